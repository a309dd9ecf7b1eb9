// The gallery: images generated in this browser, kept in IndexedDB (blobs and what served them).
// Nothing here leaves the browser; "Clear gallery" deletes it all.

const DB_NAME = "boltgate-playground";
const STORE = "images";
const KEEP = 200;  // the oldest go first past this many

function openDb() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(DB_NAME, 1);
    opening.onupgradeneeded = () => {
      const store = opening.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      store.createIndex("created", "created");
    };
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

function finished(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

export class Gallery {
  constructor() {
    this.db = null;
  }

  async ready() {
    if (this.db === null) {
      try {
        this.db = await openDb();
      } catch {
        this.db = undefined;  // IndexedDB refused (private mode): the page works without a gallery
      }
    }
    return this.db;
  }

  async add(entries) {
    const db = await this.ready();
    if (!db) return;
    const transaction = db.transaction(STORE, "readwrite");
    const store = transaction.objectStore(STORE);
    for (const entry of entries) store.add(entry);
    await finished(transaction);
    await this.trim(db);
  }

  async trim(db) {
    const all = await this.list();
    if (all.length <= KEEP) return;
    const transaction = db.transaction(STORE, "readwrite");
    for (const old of all.slice(KEEP)) transaction.objectStore(STORE).delete(old.id);
    await finished(transaction);
  }

  // Newest first.
  async list() {
    const db = await this.ready();
    if (!db) return [];
    const transaction = db.transaction(STORE, "readonly");
    const request = transaction.objectStore(STORE).getAll();
    await finished(transaction);
    return request.result.sort((a, b) => b.created - a.created || b.id - a.id);
  }

  async clear() {
    const db = await this.ready();
    if (!db) return;
    const transaction = db.transaction(STORE, "readwrite");
    transaction.objectStore(STORE).clear();
    await finished(transaction);
  }
}

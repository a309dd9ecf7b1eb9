"""How ``boltgate serve`` listens: uvicorn (uvloop + httptools) with a guarded HTTP protocol."""

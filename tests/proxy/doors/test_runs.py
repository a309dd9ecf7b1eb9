"""A door's run as the job it becomes: the generation body names only what the client gave, so
the job is routed as the door's request would be."""

from __future__ import annotations

from proxy.api.openai_request import to_image_request
from proxy.doors.eachlabs import INPUT as EACHLABS_INPUT
from proxy.doors.runflow import INPUT as RUNFLOW_INPUT
from proxy.doors.runs import generation_body


def test_a_job_body_names_only_the_fields_the_client_gave() -> None:
    request = RUNFLOW_INPUT.to_request({"prompt": "a fox", "width": 512, "height": 768})

    body = generation_body(request)

    assert body == {"prompt": "a fox", "size": "512x768", "output_format": "jpeg", "response_format": "url"}
    job_request = to_image_request(body)
    assert not {"steps", "seed", "guidance_scale"} & job_request.model_fields_set  # any vendor may serve it


def test_a_job_body_carries_every_field_given_and_means_the_same_request() -> None:
    request = EACHLABS_INPUT.to_request({"prompt": "a fox", "negative_prompt": "fog", "width": "512",
                                         "height": "512", "num_outputs": "2", "num_inference_steps": "8",
                                         "guidance_scale": "1.5", "seed": "7"})

    job_request = to_image_request(generation_body(request))

    assert job_request.model_dump(exclude={"model"}) == request.model_dump(exclude={"model"})
    assert job_request.model_fields_set >= request.model_fields_set - {"response_format"}

"""The train and predict pipelines as Argo WorkflowTemplates, built with Hera.

Each step is a container template running ``model-adapter step NAME`` (the step command's
table, ``adapter_base.cli.step.STEPS``, says its inputs and outputs): run-wide values come
from the workflow's parameters, values one step hands the next from its output files
(``outputs.parameters[].valueFrom.path``).

* train: load -> train -> commit -> evaluate -> promote (when evaluate says ``true``);
  ``finalize`` is the workflow's ``onExit``, fed ``{{workflow.status}}``.
* predict: load and split_dataset -> predict_shard per shard (``withParam`` over the shard
  numbers, at most ``parallelism`` at once) -> merge_reports.

The run id is ``{{workflow.uid}}``. Every step: the store's ConfigMap and Secret as ``envFrom``,
requests and limits (``compute.with_defaults``), a non-root security context, and a
``retryStrategy`` that retries a deleted pod (``OnError``; ``Always`` for a shard, as a failed
shard is retried on KFP too) with backoff.
"""

from __future__ import annotations

from typing import Any

from adapter_base.cli.step import STEPS, option, output_option

from ..compute import SCRATCH_MOUNT_PATH, SCRATCH_VOLUME, ComputeProfile, get_profile, with_defaults
from ..image_ref import chosen_image
from ..steps import PIPELINE_KINDS
from ..store_env import STORE_CONFIG_MAP, STORE_SECRET
from .settings import OUTPUTS_DIR, PIPELINE_LABEL, RUN_AS_USER, WorkflowOptions, template_name

#: The steps that run on the chosen compute profile; the others get ``STEP_DEFAULTS`` only.
HEAVY_STEPS = frozenset({"train", "evaluate", "predict_shard"})
RUN_ID = "{{workflow.uid}}"

#: The workflow parameters of each pipeline: name -> default ("" where optional; None: required).
#: The names and defaults are those of the KFP pipelines' parameters.
PARAMETERS: dict[str, dict[str, str | None]] = {
    "train": {
        "adapter": None,
        "model": None,
        "dataset": "",
        "store_uri": "",
        "configuration": "{}",
        "batch_size": "0",
        "test_filters": '{"subset": "test"}',
        "metric": "accuracy",
        "threshold": "0.9",
        "alias": "production",
    },
    "predict": {
        "adapter": None,
        "model": None,
        "dataset": None,
        "store_uri": "",
        "configuration": "{}",
        "batch_size": "0",
        "filters": "{}",
        "num_shards": "4",
        "resume": "false",
        "alias": "",
    },
}


def argo_name(name: str) -> str:
    """A step or parameter name as Argo spells it here (``split_dataset`` -> ``split-dataset``)."""
    return name.replace("_", "-")


def workflow_parameter(name: str) -> str:
    return "{{workflow.parameters." + argo_name(name) + "}}"


def default_image() -> str:
    """``$MODEL_ADAPTER_IMAGE`` (checked), else ``model-adapter:dev``: the KFP path's default too."""
    import os

    from ..image_ref import IMAGE_ENV

    chosen_image(None)
    return os.environ.get(IMAGE_ENV) or "model-adapter:dev"


def _container(step: str, image: str, profile: ComputeProfile, opts: WorkflowOptions, given: dict[str, str | None]) -> Any:
    """The container template of ``step``: ``given`` maps each input it gets to its value in the command
    line (a constant or a workflow variable), or to None for a template input the DAG task passes."""
    from hera.workflows import ConfigMapEnvFrom, Container, EmptyDirVolume, Parameter, Resources, SecretEnvFrom
    from hera.workflows import models as m

    spec = STEPS[step]
    args: list[str] = []
    inputs = []
    for inp in spec.inputs:
        if inp.name not in given:
            continue
        value = given[inp.name]
        if value is None:
            inputs.append(Parameter(name=argo_name(inp.name)))
            value = "{{inputs.parameters." + argo_name(inp.name) + "}}"
        args += [option(inp.name), value]
    outputs = []
    for out in spec.outputs:
        path = f"{OUTPUTS_DIR}/{argo_name(out.name)}"
        args += [output_option(out.name), path]
        outputs.append(Parameter(name=argo_name(out.name), value_from=m.ValueFrom(path=path)))
    p = with_defaults(profile)
    resources = Resources(
        cpu_request=p.cpu_request,
        cpu_limit=p.cpu_limit,
        memory_request=p.memory_request,
        memory_limit=p.memory_limit,
        ephemeral_request=p.ephemeral_storage,
        gpus=p.accelerator_count if p.uses_accelerator else None,
        gpu_flag=p.accelerator_type if p.uses_accelerator else None,
    )
    backoff = m.Backoff(duration=opts.backoff, factor=m.IntOrString(str(opts.backoff_factor)), max_duration=opts.backoff_max)
    retry = m.RetryStrategy(
        limit=m.IntOrString(str(opts.retries)),
        retry_policy="Always" if step == "predict_shard" else "OnError",
        backoff=backoff,
    )
    volumes = []
    if p.ephemeral_storage:
        volumes.append(EmptyDirVolume(name=SCRATCH_VOLUME, mount_path=SCRATCH_MOUNT_PATH, size_limit=p.ephemeral_storage))
    return Container(
        name=argo_name(step),
        image=image,
        command=["model-adapter", "step", step],
        args=args,
        inputs=inputs or None,
        outputs=outputs or None,
        env_from=[ConfigMapEnvFrom(name=STORE_CONFIG_MAP), SecretEnvFrom(name=STORE_SECRET, optional=True)],
        resources=resources,
        node_selector=dict(p.node_selector) or None,
        tolerations=[m.Toleration(**t) for t in p.tolerations] or None,
        retry_strategy=retry if opts.retries else None,
        volumes=volumes or None,
        security_context=m.SecurityContext(
            allow_privilege_escalation=False,
            run_as_non_root=True,
            capabilities=m.Capabilities(drop=["ALL"]),
        ),
    )


def _workflow_args(kind: str) -> list[Any]:
    from hera.workflows import Parameter

    return [
        Parameter(name=argo_name(name), value=default) if default is not None else Parameter(name=argo_name(name))
        for name, default in PARAMETERS[kind].items()
    ]


def _globals(step: str, kind: str) -> dict[str, str | None]:
    """The inputs of ``step`` that come from the workflow's parameters or its uid."""
    names = {inp.name for inp in STEPS[step].inputs}
    given: dict[str, str | None] = {name: workflow_parameter(name) for name in PARAMETERS[kind] if name in names}
    if "run_id" in names:
        given["run_id"] = RUN_ID
    return given


def build_workflow_template(
    kind: str,
    image: str | None = None,
    profile: str | ComputeProfile = "gpu",
    options: WorkflowOptions | None = None,
    *,
    name: str | None = None,
    namespace: str | None = None,
) -> Any:
    """The Hera ``WorkflowTemplate`` of pipeline ``kind`` for ``image``, heavy steps on ``profile``."""
    from hera.workflows import DAG, Task, WorkflowTemplate
    from hera.workflows import models as m

    if kind not in PIPELINE_KINDS:
        raise ValueError(f"unknown pipeline {kind!r}; choose one of: {', '.join(PIPELINE_KINDS)}")
    image = chosen_image(image, "image") or default_image()
    prof = get_profile(profile)
    opts = (options or WorkflowOptions()).check()
    light = get_profile("cpu")

    def container(step: str, **given: str | None) -> Any:
        return _container(step, image, prof if step in HEAVY_STEPS else light, opts, {**_globals(step, kind), **given})

    def out(task: str, output: str) -> str:
        return "{{tasks." + argo_name(task) + ".outputs.parameters." + argo_name(output) + "}}"

    def passing(**values: str) -> dict[str, str]:
        return {argo_name(k): v for k, v in values.items()}

    labels = {PIPELINE_LABEL: kind}
    with WorkflowTemplate(
        name=name or template_name(kind),
        namespace=namespace,
        labels=labels,
        entrypoint="main",
        arguments=_workflow_args(kind),
        on_exit="finalize" if kind == "train" else None,
        service_account_name=opts.service_account,
        active_deadline_seconds=opts.active_deadline_seconds,
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        ttl_strategy=m.TTLStrategy(seconds_after_success=opts.ttl_after_success_s, seconds_after_failure=opts.ttl_after_failure_s),
        pod_metadata=m.Metadata(labels=labels),
        security_context=m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_USER,
            fs_group=RUN_AS_USER,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
    ) as wt:
        if kind == "train":
            load = container("load", record_failures="true", alias="")
            train = container("train", base_model=None)
            commit = container("commit", staged_model=None)
            evaluate = container("evaluate", trained_model=None, filters=workflow_parameter("test_filters"))
            promote = container("promote", trained_model=None)
            container("finalize", state="{{workflow.status}}")
            with DAG(name="main"):
                t_load = Task(name="load", template=load)
                t_train = Task(name="train", template=train, arguments=passing(base_model=out("load", "base_model")))
                t_commit = Task(name="commit", template=commit, arguments=passing(staged_model=out("train", "staged_model")))
                t_eval = Task(name="evaluate", template=evaluate, arguments=passing(trained_model=out("commit", "trained_model")))
                t_promote = Task(
                    name="promote",
                    template=promote,
                    arguments=passing(trained_model=out("commit", "trained_model")),
                    when=out("evaluate", "promote") + " == true",
                )
                t_load >> t_train >> t_commit >> t_eval >> t_promote
        else:
            load = container("load", record_failures="false")
            split = container("split_dataset")
            shard = container("predict_shard", base_model=None, shards=None, shard=None)
            merge = container("merge_reports", shards=None)
            with DAG(name="main", parallelism=opts.parallelism):
                t_load = Task(name="load", template=load)
                t_split = Task(name="split-dataset", template=split)
                t_shard = Task(
                    name="predict-shard",
                    template=shard,
                    arguments=passing(base_model=out("load", "base_model"), shards=out("split_dataset", "shards"), shard="{{item}}"),
                    with_param=out("split_dataset", "shard_numbers"),
                )
                t_merge = Task(name="merge-reports", template=merge, arguments=passing(shards=out("split_dataset", "shards")))
                [t_load, t_split] >> t_shard >> t_merge
    return wt


def render(kind: str, image: str | None = None, profile: str | ComputeProfile = "gpu", options: WorkflowOptions | None = None, **kw: Any) -> dict[str, Any]:
    """The WorkflowTemplate of ``kind`` as a plain dict (what ``kubectl apply`` takes)."""
    return build_workflow_template(kind, image, profile, options, **kw).to_dict()

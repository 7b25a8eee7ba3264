"""A model sharded across the processes of a launch (docs/scale.md).

Training: torch's FSDP2 (``train.sharding=fsdp``) or DeepSpeed ZeRO stage 2 / 3 (``zero2`` / ``zero3``, also
in one process for DeepSpeed's offloading), or what an accelerate config file asks for. Either way the loop
trains a sharded copy of the model and gathers the full weights back into the model at the end (the model
waits on the CPU meanwhile, so the accelerator holds the shards alone). The copy's gradients are the sum
over the processes, as in plain data parallelism: the loop normalises each step by its global item count,
so N processes give the update of one process with the same global batch.

Evaluation (``eval.sharding=fsdp``): :func:`evaluated` runs a model's passes on a copy sharded with FSDP2,
the processes in lockstep (:func:`lethe.dist.lockstep`).
"""
from __future__ import annotations

import copy
import gc
import json
import logging
import os
import warnings
from contextlib import contextmanager

import torch

from . import dist
from .errors import LetheError
from .models import current_placement, decoder_layers


def requested(option: str) -> str:
    """The sharding of this launch: ``train.sharding`` (``option``) unless it is "none", then what the
    accelerate config of ``accelerate launch --config_file`` asks for (FSDP, or DeepSpeed's ZeRO stage).
    One process shards nothing, but DeepSpeed's ZeRO still offloads there (a DeepSpeed JSON's
    ``offload_optimizer`` / ``offload_param``): "zero2" / "zero3" stay, "fsdp" is "none"."""
    if dist.world() == 1 and (option == "fsdp" or dist.launch_sharding() == "fsdp"):
        return "none"
    if option != "none":
        return option
    launch = dist.launch_sharding()
    return f"zero{deepspeed_stage()}" if launch == "deepspeed" else launch or "none"


def held(option: str) -> bool:
    """Whether the model trains from host memory without ever going whole to a device: held there by
    ``eval.sharding`` (:attr:`lethe.models.Placement.host`) and trained sharded (``option``, or the launch's
    accelerate config)."""
    return current_placement().host and requested(option) != "none"


def deepspeed_stage() -> int:
    """The ZeRO stage of an accelerate DeepSpeed config: its own ``zero_stage``, or that of the DeepSpeed
    JSON file it names; 2 or 3 (stages 0 and 1 shard nothing Lethe's data parallelism does not)."""
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "")
    if not stage:
        stage = str(user_deepspeed_config().get("zero_optimization", {}).get("stage", 2))
    if stage not in ("2", "3"):
        raise LetheError(f"the accelerate DeepSpeed config asks for ZeRO stage {stage}; Lethe drives stages 2 and 3 "
                         "(stages 0 and 1 add nothing to its data parallelism): set zero_stage to 2 or 3")
    return int(stage)


def user_deepspeed_config() -> dict:
    """The DeepSpeed JSON file an accelerate config names (``deepspeed_config_file``), or {}."""
    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "")
    if not path or path.lower() == "none":
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise LetheError(f"the DeepSpeed config {path} (named by the accelerate config) cannot be read: {exc}") from None


def deepspeed_config(stage: int, dtype, max_grad_norm: float) -> dict:
    """The config Lethe hands DeepSpeed: the ZeRO section of the user's DeepSpeed JSON (offload, bucket sizes)
    at ``stage``, with the accelerate config's offload devices; one micro-batch per engine step (the loop cuts
    its own), clipping at ``max_grad_norm``, bf16 / fp16 as the weights are."""
    zero = {**user_deepspeed_config().get("zero_optimization", {}), "stage": stage}
    for part in ("optimizer", "param"):
        where = os.environ.get(f"ACCELERATE_DEEPSPEED_OFFLOAD_{part.upper()}_DEVICE", "none")
        if where != "none":
            zero[f"offload_{part}"] = {**zero.get(f"offload_{part}", {}), "device": where}
    return {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "train_batch_size": dist.world(),
            "gradient_clipping": max_grad_norm, "zero_optimization": zero,
            "bf16": {"enabled": dtype == torch.bfloat16}, "fp16": {"enabled": dtype == torch.float16},
            "zero_allow_untested_optimizer": True, "zero_force_ds_cpu_optimizer": False, "steps_per_print": 2**31 - 1}


def shard(model, kind: str, make_optimizer, max_grad_norm: float, device, master: bool = False):
    """A copy of ``model`` sharded across the processes on ``device`` (``kind``: fsdp, zero2 or zero3) with its
    optimizer and schedule (``make_optimizer(module) -> (optimizer, scheduler)``); each step clips the global
    gradient norm to ``max_grad_norm`` (0: no clipping). ``model`` waits in host memory meanwhile. ``master``
    (``train.master_weights``): FSDP keeps the shards of half-precision trainable weights in float32 and
    computes in the weights' dtype; DeepSpeed keeps float32 master weights in bf16 / fp16 either way."""
    home = next(model.parameters()).device
    if kind == "fsdp":
        return FSDP(model, home, torch.device(device), make_optimizer, max_grad_norm, master)
    net = copy.deepcopy(model)
    model.to("cpu")
    return ZeRO(net, home, make_optimizer, max_grad_norm, int(kind[-1]))


def _fully_sharded(model, device, trainable: bool, master: bool = False):
    """A copy of ``model`` sharded with FSDP2 ``fully_shard`` (each decoder layer, then the rest) across the
    processes on ``device``: built on the meta device, so host memory never holds a second copy, then each
    process fills its shard of every weight from ``model``, one tensor at a time. Every process takes part.
    ``master``: the shards of half-precision trainable weights are float32 (what the optimizer updates), gathered
    in the weights' dtype for the passes (a ``MixedPrecisionPolicy``; gradients reduced in float32)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from torch.distributed.tensor import distribute_tensor

    trains = {id(p): trainable and p.requires_grad for p in model.parameters()}
    half = {p.dtype for p in model.parameters() if trains[id(p)] and p.dtype in (torch.bfloat16, torch.float16)}
    upcast = master and len(half) == 1
    skeleton = {id(p): torch.nn.Parameter(torch.empty_like(p, device="meta",
                                                           dtype=torch.float32 if upcast and trains[id(p)] else None),
                                          requires_grad=trains[id(p)]) for p in model.parameters()}
    net = copy.deepcopy(model, skeleton)
    mesh = init_device_mesh(device.type, (dist.world(),))
    policy = {"mp_policy": MixedPrecisionPolicy(param_dtype=half.pop(), reduce_dtype=torch.float32)} if upcast else {}
    for layer in decoder_layers(net)[1]:
        fully_shard(layer, mesh=mesh, **policy)
    fully_shard(net, mesh=mesh, **policy)
    net.to_empty(device=device)
    weights, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    with torch.no_grad():
        for name, p in net.named_parameters():
            part = distribute_tensor(weights[name].detach().to(device, p.dtype), mesh, p.placements, src_data_rank=None)
            p.to_local().copy_(part.to_local())
        for name, b in net.named_buffers():  # to_empty left them unset (rotary frequencies and the like)
            b.copy_(buffers[name])
    return net


class FSDP:
    """Torch's FSDP2 (``fully_shard``): each decoder layer (:func:`lethe.models.decoder_layers`), then the
    rest; gradients summed, not averaged, over the processes."""

    def __init__(self, model, home, device, make_optimizer, max_grad_norm: float, master: bool = False):
        from torch.distributed.fsdp import FSDPModule

        net = _fully_sharded(model, device, trainable=True, master=master)
        model.to("cpu")  # the device holds the shards alone
        for module in net.modules():
            if isinstance(module, FSDPModule):
                module.set_gradient_divide_factor(1.0)
                module.set_force_sum_reduction_for_comms(True)  # a plain sum (gloo has no pre-multiplied one)
        self.net, self.device, self.max_grad_norm = net, home, max_grad_norm
        self.opt, self.sched = make_optimizer(net)

    def micro_batch(self, last: bool) -> None:
        """Before each micro-batch of a step: the gradients are reduced after the last one only."""
        self.net.set_requires_gradient_sync(last)

    def backward(self, loss) -> None:
        loss.backward()

    def step(self):
        """Clip, update, zero the gradients; returns the gradient norm before clipping (None: clipping off)."""
        norm = None
        if self.max_grad_norm > 0:  # the global norm over the shards
            norm = torch.nn.utils.clip_grad_norm_([p for p in self.net.parameters() if p.requires_grad],
                                                  self.max_grad_norm)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return norm

    def gather_into(self, model) -> None:
        """The full weights (every process takes part) copied into ``model`` one tensor at a time, so the device
        never holds more than one whole tensor; ``model`` goes back where it was."""
        own = dict(model.named_parameters())
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                own[name].copy_(p.full_tensor().to("cpu"))
        model.to(self.device)


def one_process_group() -> bool:
    """A process group of this process alone, which DeepSpeed's engine needs even for one process (ZeRO's
    offloading), unless there is one; whether it made one (then :class:`ZeRO` ends it after the training)."""
    import socket

    import torch.distributed as td

    if td.is_initialized():
        return False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    td.init_process_group("nccl" if torch.cuda.is_available() else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                          rank=0, world_size=1)
    return True


class ZeRO:
    """DeepSpeed's engine at ZeRO stage 2 (gradients and optimizer states partitioned) or 3 (the weights too),
    driven by the loop's own micro-batches: the step's boundary is set by hand, the loss is multiplied by
    the number of processes (DeepSpeed averages the gradients, the loop sums them) and not divided by an
    accumulation count. The ZeRO section of a DeepSpeed JSON file named by the accelerate config (offload
    settings, bucket sizes) is kept; batch sizes, accumulation and clipping come from ``train.*``."""

    def __init__(self, net, device, make_optimizer, max_grad_norm: float, stage: int):
        try:
            import deepspeed
        except ImportError:
            raise LetheError(f"train.sharding=zero{stage} needs the deepspeed package (pip install deepspeed)") from None
        logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", r"`torch\.distributed\.(all_gather_into_tensor|reduce_scatter_tensor)` is "
                                "deprecated", FutureWarning)  # DeepSpeed's collectives, once a step each
        if torch.device(device).type == "cpu":
            # its shared-memory all-reduce serves DeepSpeed's inference alone, and building it compiles C++
            # for half a minute on a process group's first use: training goes through torch's collectives
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        self.own_group = dist.world() == 1 and one_process_group()
        self.opt, self.sched = make_optimizer(net)
        config = deepspeed_config(stage, next(net.parameters()).dtype, max_grad_norm)
        # DeepSpeed reads LOCAL_RANK, which only a launcher sets: for one process it is set while the engine
        # lives, and goes with it (a child process must not believe it was launched)
        self.set_rank = "LOCAL_RANK" not in os.environ
        os.environ.setdefault("LOCAL_RANK", "0")
        self.engine, *_ = deepspeed.initialize(model=net, optimizer=self.opt, config=config)
        self.net, self.device, self.max_grad_norm, self.deepspeed = self.engine, device, max_grad_norm, deepspeed

    def micro_batch(self, last: bool) -> None:
        self.engine.set_gradient_accumulation_boundary(last)

    def backward(self, loss) -> None:
        self.engine.backward(loss * dist.world(), scale_wrt_gas=False)

    def step(self):
        self.engine.step()  # clipping (the global norm over the partitions), update, zeroed gradients
        self.sched.step()
        return self.engine.get_global_grad_norm() if self.max_grad_norm > 0 else None

    def gather_into(self, model) -> None:
        own = dict(model.named_parameters())
        with torch.no_grad():
            for name, p in self.engine.module.named_parameters():
                with self.deepspeed.zero.GatheredParameters([p]):  # stage 3: the whole tensor, for the block
                    own[name].copy_(p.detach().to("cpu"))
        self.engine.destroy()
        self.end()
        model.to(self.device)

    def end(self) -> None:
        """What one process set up for DeepSpeed goes (after the training, or with this object on a failure)."""
        if getattr(self, "set_rank", False):
            os.environ.pop("LOCAL_RANK", None)
            self.set_rank = False
        if getattr(self, "own_group", False) and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.own_group = False

    __del__ = end


@contextmanager
def evaluated(model, kind: str, trainable: bool = False):
    """The model an evaluation runs: ``model`` itself, or (``eval.sharding=fsdp``, launched as several
    processes) a copy sharded across them with FSDP2 on this process's device, in :func:`lethe.dist.lockstep`
    for the block and freed after it. ``model`` stays where it is (in host memory, where a model too large
    for one device waits: :func:`lethe.models.Placement`). ``trainable``: the copy's parameters keep the
    model's ``requires_grad`` flags (a method's setup reads which ones train)."""
    if kind == "none" or dist.world() == 1:
        yield model
        return
    net = sharded_copy(model, torch.device(current_placement().device), trainable)
    try:
        with dist.lockstep():
            yield net
    finally:
        del net
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def sharded_copy(model, device, trainable: bool = False):
    """A copy of ``model`` sharded across the processes on ``device`` for inference (:func:`_fully_sharded`):
    the weights are ``model``'s exactly, so its passes give one process's numbers; ``trainable``: its
    parameters keep ``model``'s ``requires_grad`` flags (else none requires grad)."""
    from transformers import PreTrainedModel

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper's model
    if not isinstance(inner, PreTrainedModel):
        raise LetheError(f"eval.sharding=fsdp shards a transformers causal LM; {type(model).__name__} is none (an "
                         "inference-time method's wrapper of several models?): set eval.sharding=none for it")
    return _fully_sharded(model, device, trainable).eval()

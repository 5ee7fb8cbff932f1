"""Device choice is loud: CUDA asked for but unusable fails naming the build and the driver, never a silent CPU run."""
import pytest
import torch

from kdlib import device


@pytest.fixture
def no_cuda(monkeypatch):
    """A node where torch cannot use CUDA (a driver older than the wheel's CUDA, or none)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("KDLIB_DEVICE", "SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", *device.SLURM_GPU_VARIABLES):
        monkeypatch.delenv(name, raising=False)


def test_without_a_request_a_node_without_cuda_trains_on_cpu(no_cuda):
    assert device.pick() == torch.device("cpu")


def test_kdlib_device_cuda_fails_naming_the_build_and_the_fix(no_cuda, monkeypatch):
    monkeypatch.setenv("KDLIB_DEVICE", "cuda")
    with pytest.raises(device.DeviceError) as err:
        device.pick()
    text = str(err.value)
    assert "KDLIB_DEVICE=cuda" in text and "torch.cuda.is_available() is False" in text
    assert (f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build") in text
    assert "environment.yml" in text and "KDLIB_DEVICE=cpu" in text
    with pytest.raises(device.DeviceError, match="device argument=cuda:1"):
        device.pick("cuda:1")


@pytest.mark.parametrize("variable, value", [("SLURM_GPUS_ON_NODE", "1"), ("SLURM_JOB_GPUS", "0,1"),
                                             ("SLURM_GPUS_PER_NODE", "a100:2"), ("CUDA_VISIBLE_DEVICES", "0")])
def test_a_slurm_job_given_gpus_fails_instead_of_training_on_cpu(no_cuda, monkeypatch, variable, value):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv(variable, value)
    with pytest.raises(device.DeviceError, match=f"Slurm job was given GPUs: {variable}={value}"):
        device.pick()


def test_a_slurm_job_without_gpus_or_with_kdlib_device_cpu_trains_on_cpu(no_cuda, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "0")
    assert device.pick() == torch.device("cpu")
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")
    monkeypatch.setenv("KDLIB_DEVICE", "cpu")  # on purpose
    assert device.pick() == torch.device("cpu")


def test_outside_slurm_cuda_visible_devices_alone_asks_for_nothing(no_cuda, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert device.pick() == torch.device("cpu")


@pytest.mark.parametrize("text, version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023\n", "535.129.03"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder)\n",
     "550.54.14"),
])
def test_the_driver_version_is_read_from_proc(text, version):
    assert device.driver_version(text) == version


def test_the_message_names_the_nodes_driver(no_cuda, monkeypatch):
    monkeypatch.setattr(device, "driver_version", lambda text=None: "470.82.01")
    assert "the NVIDIA driver on this node is 470.82.01" in device.mismatch("test")
    monkeypatch.setattr(device, "driver_version", lambda text=None: None)
    assert "no NVIDIA driver" in device.mismatch("test")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU node (this checks the real CUDA path)")
def test_on_a_gpu_node_cuda_is_chosen():
    assert device.pick().type == "cuda"

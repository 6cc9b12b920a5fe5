"""The machine a measurement names: CPU model from /proc/cpuinfo, cores, threads, GPU."""

from __future__ import annotations

import os

import torch

from btdnet.machine import cpu_model, machine_line, machine_summary


def test_cpu_model_reads_the_model_name_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD  EPYC   7B13\n"
        "flags\t\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n",
        encoding="utf-8",
    )
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"


def test_cpu_model_without_cpuinfo_still_names_something(tmp_path):
    assert cpu_model(tmp_path / "missing")  # the platform's word, never empty
    empty = tmp_path / "empty"
    empty.write_text("processor\t: 0\n", encoding="utf-8")
    assert cpu_model(empty) == cpu_model(tmp_path / "missing")


def test_machine_summary_and_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name\t: Intel(R) Xeon(R) Platinum 8481C\n", encoding="utf-8")
    summary = machine_summary(cpuinfo)
    assert summary["cpu"] == "Intel(R) Xeon(R) Platinum 8481C"
    assert summary["cpu_cores"] == os.cpu_count()
    assert summary["torch_threads"] == torch.get_num_threads()
    line = machine_line({**summary, "cpu_cores": 2, "torch_threads": 1, "accelerator": None})
    assert line == "Intel(R) Xeon(R) Platinum 8481C, 2 cores (1 torch threads), no GPU"
    gpu = machine_line({**summary, "cpu_cores": 16, "torch_threads": 16, "accelerator": "H100"})
    assert gpu.endswith("16 cores (16 torch threads), H100")

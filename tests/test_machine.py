"""`vidssm.machine.cpu_name`: the CPU model from /proc/cpuinfo, else `platform`."""

import platform
from pathlib import Path

from vidssm import machine


def test_cpu_name_reads_the_model_name_line(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Test CPU @ 3.0GHz\nflags\t: a b\n")
    real_read_text = Path.read_text
    monkeypatch.setattr(
        Path, "read_text", lambda self, *a, **k: real_read_text(cpuinfo if str(self) == "/proc/cpuinfo" else self)
    )
    assert machine.cpu_name() == "Test CPU @ 3.0GHz"


def test_cpu_name_falls_back_to_platform_without_cpuinfo(monkeypatch):
    def missing(self, *args, **kwargs):
        raise FileNotFoundError(self)

    monkeypatch.setattr(Path, "read_text", missing)
    assert machine.cpu_name() == (platform.processor() or platform.machine())

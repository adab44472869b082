"""test_cli.py: the command line itself: version, help, mistakes, config."""

import json
import re

from pgvault_cli import run_pgvault


def test_version():
    rc, out, err = run_pgvault("--version")
    assert rc == 0
    assert re.match(r"pgvault \d+\.\d+\.\d+", out), out
    assert err == ""


def test_help_lists_commands():
    rc, out, err = run_pgvault("--help")
    assert rc == 0
    for cmd in ("check", "config"):
        assert re.search(r"^\s+%s\b" % cmd, out, re.M), out
    assert out.endswith("\n")


def test_no_arguments_is_usage_error():
    rc, out, err = run_pgvault()
    assert rc == 2
    assert "--help" in out + err


def test_unknown_command_exits_2_with_hint():
    rc, out, err = run_pgvault("frobnicate")
    assert rc == 2
    assert out == ""
    assert "frobnicate" in err.splitlines()[0], err
    assert "pgvault --help" in err, err


def test_mistyped_command_suggests_the_right_one():
    rc, out, err = run_pgvault("chek")
    assert rc == 2
    assert "did you mean" in err and "check" in err, err


def test_config_without_file(tmp_path):
    # no --config, no PGVAULT_CONFIG (run_pgvault clears it), and the
    # system file does not exist on a test machine: built-in defaults
    rc, out, err = run_pgvault("config", cwd=tmp_path)
    assert rc == 0, err
    assert out.strip(), "config printed nothing"
    assert "log-level" in out, out


def test_config_with_file(tmp_path):
    conf = tmp_path / "pgvault.conf"
    conf.write_text("[global]\nlog-level = debug\n\n"
                    "[repo:main]\nurl = %s\n" % (tmp_path / "repo"))
    rc, out, err = run_pgvault("config", "--config", str(conf))
    assert rc == 0, err
    assert "debug" in out, out
    assert str(tmp_path / "repo") in out, out
    rc2, out2, err2 = run_pgvault("config", env={"PGVAULT_CONFIG": str(conf)})
    assert rc2 == 0, err2
    assert out2 == out


def test_config_json_is_valid(tmp_path):
    rc, out, err = run_pgvault("config", "--json", cwd=tmp_path)
    assert rc == 0, err
    json.loads(out)


def test_config_unknown_key_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("# comment\n[global]\nlog-level = info\n"
                    "no-such-key = 1\n")
    rc, out, err = run_pgvault("config", "--config", str(conf))
    assert rc == 2
    assert "%s:4" % conf in err, err
    assert "no-such-key" in err, err


def test_config_unknown_section_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[global]\n\n[nonsense]\nx = 1\n")
    rc, out, err = run_pgvault("config", "--config", str(conf))
    assert rc == 2
    assert "%s:3" % conf in err, err


def test_config_missing_explicit_file(tmp_path):
    rc, out, err = run_pgvault("config", "--config", str(tmp_path / "nope"))
    assert rc != 0
    assert "nope" in err, err


def test_bad_value_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("[global]\nlog-level = loud\n")
    rc, out, err = run_pgvault("config", "--config", str(conf))
    assert rc == 2
    assert "%s:2" % conf in err, err

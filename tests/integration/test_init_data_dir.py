"""`tern init DIR --data-dir PATH`: the config in one folder, the data in
another (the Debian package's /etc/tern and /var/lib/tern; docs/install.md).
"""
import os

import pytest

from test_cli import read_conf as active_keys
from test_cli import tern
from test_cli import workdir as top  # noqa: F401 (a fixture)


def test_data_dir_outside_the_config_folder(top):
    etc, data = os.path.join(top, "etc"), os.path.join(top, "lib", "tern")
    os.mkdir(os.path.join(top, "lib"))
    r = tern("init", etc, "--hostname", "mx.example.test", "--data-dir", data,
             "--domain", "example.test")
    assert r.returncode == 0, r.stderr
    assert f"  {data} databases and mailboxes" in r.stdout
    conf = os.path.join(etc, "tern.conf")
    assert active_keys(conf)["data_dir"] == data
    assert sorted(os.listdir(etc)) == ["tern.conf", "tls"]
    assert os.path.isfile(os.path.join(data, "server.db"))
    assert oct(os.stat(data).st_mode & 0o777) == "0o700"
    r = tern("domain", "list", conf=conf)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "example.test\n"


def test_earlier_data_is_kept(top):
    """A new config over the data folder of an earlier installation (the
    package reinstalled after /etc/tern was removed): the data stays."""
    data = os.path.join(top, "data")
    assert tern("init", os.path.join(top, "a"), "--data-dir", data,
                "--domain", "kept.test").returncode == 0
    r = tern("init", os.path.join(top, "b"), "--data-dir", data)
    assert r.returncode == 0, r.stderr
    assert f"  {data} (kept) databases and mailboxes" in r.stdout
    r = tern("domain", "list", conf=os.path.join(top, "b", "tern.conf"))
    assert r.stdout == "kept.test\n", r.stderr


@pytest.mark.parametrize("value, named", [
    ("relative/data", "expected an absolute path"),
    ("/x/../etc", "expected an absolute path"),
    ("FILE", "exists and is not a folder"),
    ("FULL", "folder is not empty and holds no server.db"),
])
def test_bad_data_dir_creates_nothing(top, value, named):
    afile = os.path.join(top, "afile")
    open(afile, "w").close()
    full = os.path.join(top, "full")
    os.mkdir(full)
    open(os.path.join(full, "something"), "w").close()
    value = {"FILE": afile, "FULL": full}.get(value, value)
    etc = os.path.join(top, "etc")
    r = tern("init", etc, "--data-dir", value)
    assert r.returncode == 2, r.stderr
    assert named in r.stderr
    assert not os.path.exists(etc)
    assert os.listdir(full) == ["something"]

"""The Debian package (`make test-deb`; docs/install.md "Testing the package").

Checks the .deb that `make deb` built (build-deb/tern_*.deb, or TERN_DEB):
its contents, lintian, the systemd unit (`systemd-analyze verify`), the man
pages, the packaged binary; then installs it for real with dpkg, runs the
server the way the unit does, reloads it, upgrades, removes and purges the
package.  Nothing touches this machine's root file system: the install
runs in a chroot whose root is an overlay over / (writes go to a temp
folder), in private mount and network namespaces that end with the test.
Needs root (namespaces, chroot, dpkg).
"""
import configparser
import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = "lib/systemd/system/tern.service"
MAN8 = "usr/share/man/man8/tern.8.gz"
MAN5 = "usr/share/man/man5/tern.conf.5.gz"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, dpkg)")


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if check:
        assert r.returncode == 0, (cmd, r.returncode, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def deb():
    path = os.environ.get("TERN_DEB")
    if not path:
        found = [p for p in glob.glob(os.path.join(ROOT, "build-deb", "tern_*.deb"))]
        assert len(found) == 1, f"run `make deb` first (found {found})"
        path = found[0]
    return path


@pytest.fixture(scope="module")
def unpacked(deb):
    d = tempfile.mkdtemp(prefix="tern-deb-")
    run(["dpkg-deb", "-x", deb, d])
    yield d
    shutil.rmtree(d, ignore_errors=True)


def unit_service(path):
    """The [Service] section: key -> list of values (a key may repeat)."""
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
    return out


def changelog_version():
    with open(os.path.join(ROOT, "debian", "changelog")) as f:
        return re.match(r"tern \(([^)]+)\)", f.readline()).group(1)


# ------------------------------------------------------------ the .deb file

def test_contents(deb):
    names = {line.split()[-1] for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines()}
    for want in ["./usr/sbin/tern", "./" + UNIT, "./" + MAN8, "./" + MAN5,
                 "./usr/share/doc/tern/install.md.gz", "./usr/share/doc/tern/config.md.gz",
                 "./usr/share/doc/tern/copyright"]:
        assert want in names, want
    # The configuration is made per machine by the postinst (`tern init`:
    # its host name, its own certificate), so the package ships none and
    # has no conffile (docs/install.md "Configuration").
    assert not [n for n in names if n.startswith("./etc/")]
    ctl = tempfile.mkdtemp(prefix="tern-deb-ctl-")
    try:
        run(["dpkg-deb", "-e", deb, ctl])
        assert sorted(os.listdir(ctl)) == ["control", "md5sums", "postinst", "postrm", "prerm"]
        with open(os.path.join(ctl, "control")) as f:
            control = f.read()
    finally:
        shutil.rmtree(ctl)
    assert f"Version: {changelog_version()}\n" in control
    depends = re.search(r"^Depends: (.*)$", control, re.M).group(1)
    for lib in ("adduser", "libc6", "libssl3", "libevent-core-2.1-7", "libsqlite3-0",
                "libunbound8", "libjansson4"):
        assert re.search(rf"(^|, ){re.escape(lib)}( |,|$)", depends), (lib, depends)


def test_lintian(deb):
    # --fail-on error,warning: any E: or W: tag fails; there are no
    # overrides.  I: and N: lines are informational.
    r = run(["lintian", "--fail-on", "error,warning", deb], check=False)
    tags = [line for line in r.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert r.returncode == 0 and not tags, r.stdout + r.stderr


# ---------------------------------------------------------------- the unit

def test_unit_verifies(unpacked):
    """`systemd-analyze verify` checks the unit's syntax, that its commands
    exist and are executable, and its Documentation= man pages: the
    packaged binary is laid over /usr/sbin in a private mount namespace
    (nothing is installed on this machine) and MANPATH points at the
    packaged man pages."""
    env = dict(os.environ, MANPATH=os.path.join(unpacked, "usr/share/man") + ":")
    script = ("mount -t overlay overlay -o lowerdir=%s/usr/sbin:/usr/sbin /usr/sbin && "
              "systemd-analyze verify %s/%s" % (unpacked, unpacked, UNIT))
    r = run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            check=False, env=env)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_unit_settings(unpacked):
    s = unit_service(os.path.join(unpacked, UNIT))
    one = {k: v[0] for k, v in s.items() if len(v) == 1}
    # tern serve stays in the foreground and does not call sd_notify.
    assert one["Type"] == "exec"
    assert one["ExecStart"] == "/usr/sbin/tern -c /etc/tern/tern.conf serve"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["User"] == "tern" and one["Group"] == "tern"
    assert one["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert one["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert one["NoNewPrivileges"] == "yes"
    assert one["ProtectSystem"] == "strict"
    assert one["ReadWritePaths"] == "/var/lib/tern"
    assert one["PrivateTmp"] == "yes" and one["ProtectHome"] == "yes"
    assert one["Restart"] == "on-failure"
    assert one["LimitNOFILE"] == "65536"
    r = run(["systemd-analyze", "security", "--offline=true",
             os.path.join(unpacked, UNIT)], check=False)
    m = re.search(r"Overall exposure level for tern.service: ([0-9.]+)", r.stdout)
    assert m and float(m.group(1)) <= 4.0, r.stdout[-400:]


# ------------------------------------------------------------ man pages

def man_source(unpacked, page):
    return run(["zcat", os.path.join(unpacked, page)]).stdout


@pytest.mark.parametrize("page", [MAN8, MAN5])
def test_man_page_renders_without_warnings(unpacked, page):
    r = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
             os.path.join(unpacked, page)], check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def doc_table_tags(doc, heading):
    """The backticked names in the first cell of each row of the table
    under heading (read here independently of man/gen-man.py)."""
    names, inside = [], False
    with open(os.path.join(ROOT, "docs", doc), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                inside = line.lstrip("#").strip() == heading
            elif inside and line.startswith("| `"):
                first = re.split(r"(?<!\\)\|", line)[1]
                names.append(re.findall(r"`([^`]+)`", first))
    assert names, (doc, heading)
    return names


def test_tern_conf_5_has_every_documented_key(unpacked):
    src = man_source(unpacked, MAN5)
    tags = re.findall(r"^\.TP\n(.*)$", src, re.M)
    rows = doc_table_tags("config.md", "Keys")
    assert len(tags) == len(rows)
    for tag, keys in zip(tags, rows):
        for key in keys:
            assert "\\fB" + key.replace("-", "\\-") + "\\fR" in tag, (key, tag)
    assert "\\fBtern.conf\\fR" not in tags
    assert f'"tern {changelog_version()}"' in src


def test_tern_8_has_every_documented_command(unpacked):
    src = man_source(unpacked, MAN8)
    tags = re.findall(r"^\.TP\n(.*)$", src, re.M)
    rows = doc_table_tags("admin.md", "The `tern` command")
    cmd_tags = [t for t in tags if t.startswith("\\fBtern ")]
    assert len(cmd_tags) == len(rows)
    for tag, names in zip(cmd_tags, rows):
        assert tag.startswith("\\fB" + names[0].replace("\\|", "|").replace("-", "\\-")), \
            (names, tag)


# ------------------------------------------------------- the packaged binary

def test_packaged_binary_version_and_init(unpacked):
    tern = os.path.join(unpacked, "usr/sbin/tern")
    r = run([tern, "--version"])
    assert r.stdout == f"tern {changelog_version()}\n"
    top = tempfile.mkdtemp(prefix="tern-deb-init-")
    os.chmod(top, 0o755)
    try:
        etc, data = os.path.join(top, "etc/tern"), os.path.join(top, "var/lib/tern")
        os.makedirs(os.path.dirname(data))
        r = run([tern, "init", etc, "--data-dir", data, "--hostname", "mx.example.test",
                 "--user", "nobody"])
        assert "Created " + etc in r.stdout
        r = run([tern, "-c", os.path.join(etc, "tern.conf"), "domain", "add", "example.test"])
        assert run([tern, "-c", os.path.join(etc, "tern.conf"), "domain",
                    "list"]).stdout == "example.test\n"
        assert os.path.isfile(os.path.join(data, "server.db"))
    finally:
        shutil.rmtree(top)


# --------------------------------- installed for real, in an overlay chroot

class Chroot:
    """/ overlaid by a temp folder, in private mount and network namespaces
    held open by one process; commands run in it with nsenter + chroot."""

    def __init__(self):
        self.top = tempfile.mkdtemp(prefix="tern-deb-chroot-")
        for d in ("upper", "work", "merged"):
            os.mkdir(os.path.join(self.top, d))
        self.merged = os.path.join(self.top, "merged")
        self.holder = None

    def put(self, src, dest):
        """Copies src into the chroot before it starts (the upper layer)."""
        path = os.path.join(self.top, "upper", dest.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(src, path)

    def start(self):
        t = self.top
        script = (f"mount -t overlay overlay -o lowerdir=/,upperdir={t}/upper,"
                  f"workdir={t}/work {t}/merged && "
                  f"mount -t proc proc {t}/merged/proc && "
                  f"mount --rbind /dev {t}/merged/dev && "
                  f"mount -t tmpfs tmpfs {t}/merged/run && "
                  f"ip link set lo up && echo ready && exec sleep 3600")
        self.holder = subprocess.Popen(
            ["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline()
        assert line == "ready\n", self.holder.stderr.read()

    def cmd(self, argv, net_only=False):
        ns = ["nsenter", "-t", str(self.holder.pid), "-n"]
        return ns + argv if net_only else ns + ["-m", "chroot", self.merged] + argv

    def run(self, *argv, check=True, input=None):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "DEBIAN_FRONTEND": "noninteractive"}
        return run(self.cmd(list(argv)), check=check, input=input, env=env)

    def exists(self, path):
        return self.run("test", "-e", path, check=False).returncode == 0

    def read(self, path):
        return self.run("cat", path).stdout

    def close(self):
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="module")
def chroot(deb):
    c = Chroot()
    c.put(deb, "/tern-test/tern.deb")
    try:
        c.start()
        # A clean machine has no tern user: the postinst makes it.  (This
        # machine may have one from scripts/install-deps.sh; in the
        # overlay it is removed from a copy of /etc/passwd.)
        if c.run("getent", "passwd", "tern", check=False).returncode == 0:
            c.run("userdel", "tern")
        if c.run("getent", "group", "tern", check=False).returncode == 0:
            c.run("groupdel", "tern")
        yield c
    finally:
        c.close()


def stat_of(c, path):
    user, group, mode = c.run("stat", "-c", "%U %G %a", path).stdout.split()
    return user, group, mode


def conf_keys(text):
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def test_install(chroot):
    c = chroot
    r = c.run("dpkg", "-i", "/tern-test/tern.deb")
    assert "Setting up tern" in r.stdout
    pw = c.run("getent", "passwd", "tern").stdout.strip().split(":")
    assert int(pw[2]) < 1000 and pw[5] == "/var/lib/tern" and pw[6] == "/usr/sbin/nologin", pw
    keys = conf_keys(c.read("/etc/tern/tern.conf"))
    fqdn = c.run("hostname", "--fqdn", check=False).stdout.strip()
    want_host = fqdn if "." in fqdn else c.run("hostname").stdout.strip().lower()
    assert keys["hostname"] == want_host
    assert keys["data_dir"] == "/var/lib/tern" and keys["user"] == "tern"
    assert keys["smtp.listen"] == "127.0.0.1:25"  # loopback until the admin opens it
    assert stat_of(c, "/var/lib/tern") == ("tern", "tern", "700")
    assert stat_of(c, "/etc/tern/tern.conf") == ("root", "root", "644")
    assert stat_of(c, "/etc/tern/tls/key.pem") == ("tern", "tern", "600")
    assert c.exists("/var/lib/tern/server.db")
    # Enabled by dh_installsystemd (started too where systemd runs).
    link = c.run("readlink", "/etc/systemd/system/multi-user.target.wants/tern.service")
    assert link.stdout.strip() == "/lib/systemd/system/tern.service"
    assert c.run("dpkg-query", "-W", "-f", "${Conffiles}", "tern").stdout.strip() == ""


CAP_NET_BIND_SERVICE = 1 << 10


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def wait_for(pred, seconds, what, log):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    log.seek(0)
    raise AssertionError("timed out waiting for " + what + "; log:\n" + log.read())


CLIENT = r"""
import imaplib, smtplib, socket, sys, time
end = time.monotonic() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", 25), 1).close()
        break
    except OSError:
        if time.monotonic() > end:
            raise
        time.sleep(0.1)
s = smtplib.SMTP(timeout=10)
code, greeting = s.connect("127.0.0.1", 25)
print("SMTP", code, greeting.decode())
print("EHLO", *s.ehlo("client.example"))
s.quit()
i = imaplib.IMAP4("127.0.0.1", 143, timeout=10)
print("IMAP", i.welcome.decode())
i.logout()
"""


def test_serve_as_the_unit_does(chroot, unpacked):
    """The server started with the unit's user, capabilities and limits
    (setpriv and prlimit stand in for systemd, which does not run here):
    it binds ports 25 and 143 as tern with CAP_NET_BIND_SERVICE alone,
    reloads on the unit's SIGHUP and stops on SIGTERM."""
    c = chroot
    s = unit_service(os.path.join(unpacked, UNIT))
    caps = s["AmbientCapabilities"][0].lower().replace("cap_", "+")
    # Without CAP_SYS_RESOURCE (as in a container) the hard limit cannot
    # be raised above this process's: then the unit's value is capped.
    nofile = min(int(s["LimitNOFILE"][0]), resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    argv = (["prlimit", f"--nofile={nofile}:{nofile}",
             "setpriv", f"--reuid={s['User'][0]}", f"--regid={s['Group'][0]}", "--init-groups",
             f"--inh-caps={caps}", f"--ambient-caps={caps}",
             f"--bounding-set=-all,{s['CapabilityBoundingSet'][0].lower().replace('cap_', '+')}",
             "--no-new-privs"] + s["ExecStart"][0].split())
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(c.cmd(argv), stdout=subprocess.DEVNULL, stderr=log,
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def logged(text):
        log.seek(0)
        return log.read().count(text)

    try:
        wait_for(lambda: logged("master action=start"), 20, "the master to start", log)
        r = run(c.cmd(["/usr/bin/python3", "-c", CLIENT], net_only=True))
        host = conf_keys(c.read("/etc/tern/tern.conf"))["hostname"]
        assert f"SMTP 220 {host} ESMTP Tern\n" in r.stdout, r.stdout
        assert f"EHLO 250 b'{host}\\nPIPELINING" in r.stdout, r.stdout
        assert "IMAP * OK" in r.stdout, r.stdout
        # Every process of the server: the tern user, no way back to root,
        # one capability.
        master = proc.pid
        assert open(f"/proc/{master}/comm").read().strip() == "tern"
        kids = run(["pgrep", "-P", str(master)]).stdout.split()
        assert kids
        tern_uid = c.run("id", "-u", "tern").stdout.strip()
        for pid in [master] + [int(k) for k in kids]:
            st = proc_status(pid)
            assert st["Uid"].split() == [tern_uid] * 4, (pid, st["Uid"])
            assert int(st["CapBnd"], 16) == CAP_NET_BIND_SERVICE
            assert int(st["CapEff"], 16) in (0, CAP_NET_BIND_SERVICE)
            assert st["NoNewPrivs"] == "1"
        with open(f"/proc/{master}/limits") as f:
            assert re.search(rf"Max open files\s+{nofile}\s+{nofile}", f.read())
        # ExecReload.
        os.kill(master, signal.SIGHUP)
        # One "reload result=ok" a process: the master, the workers and the
        # queue runner.
        wait_for(lambda: logged("] reload result=ok") == 1 + len(kids), 20, "the reload", log)
        assert proc.poll() is None
        # systemctl stop (KillMode=mixed: SIGTERM to the master).
        os.kill(master, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert logged("master action=stopped") == 1
        log.seek(0)
        text = log.read()
        assert " error " not in text and "level=error" not in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_upgrade_keeps_config_and_data(chroot):
    c = chroot
    c.run("tern", "domain", "add", "example.test")  # as root: drops to tern
    c.run("sh", "-c", "echo '# edited by the admin' >> /etc/tern/tern.conf")
    before = c.read("/etc/tern/tern.conf")
    c.run("dpkg", "-i", "/tern-test/tern.deb")
    assert c.read("/etc/tern/tern.conf") == before
    assert c.run("tern", "domain", "list").stdout == "example.test\n"


def test_remove_keeps_config_and_data(chroot):
    c = chroot
    c.run("dpkg", "-r", "tern")
    assert not c.exists("/usr/sbin/tern")
    assert c.exists("/etc/tern/tern.conf") and c.exists("/var/lib/tern/server.db")


def test_reinstall_after_the_config_was_deleted_keeps_the_data(chroot):
    """The package removed (not purged) and /etc/tern deleted by hand: the
    next install writes a new config over the mail that stayed."""
    c = chroot
    c.run("rm", "-r", "/etc/tern")
    c.run("dpkg", "-i", "/tern-test/tern.deb")
    assert conf_keys(c.read("/etc/tern/tern.conf"))["data_dir"] == "/var/lib/tern"
    assert c.run("tern", "domain", "list").stdout == "example.test\n"
    c.run("dpkg", "-r", "tern")


def test_purge_removes_config_and_data(chroot):
    c = chroot
    c.run("dpkg", "-P", "tern")
    assert not c.exists("/etc/tern")
    assert not c.exists("/var/lib/tern")
    assert not c.exists("/etc/systemd/system/multi-user.target.wants/tern.service")
    # The system user stays (files of it may remain elsewhere).
    assert c.run("getent", "passwd", "tern", check=False).returncode == 0

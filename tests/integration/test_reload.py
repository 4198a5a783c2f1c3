"""SIGHUP reloads the config without dropping connections (docs/config.md)."""
import http.client
import os
import re
import shutil
import signal
import socket

import pytest

from conftest import HOST, HOSTNAME, SMTPRaw, doc_config_keys, timeout


def rcpts_accepted(srv, n):
    """Opens a session, sends n RCPTs, returns how many got 250."""
    with SMTPRaw(srv.host, srv.smtp_port) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        ok = 0
        for _ in range(n):
            if c.cmd("RCPT TO:<alice@example.test>")[0] == 250:
                ok += 1
        c.cmd("QUIT")
        return ok


def test_sighup_applies_new_values_and_keeps_sessions(make_server):
    srv = make_server(conf={"smtp.max_recipients": 2})
    assert rcpts_accepted(srv, 4) == 2
    with SMTPRaw(srv.host, srv.smtp_port) as open_session:
        open_session.ehlo()
        srv.set_config({"smtp.max_recipients": 3, "hostname": "renamed.example.test"})
        os.kill(srv.pid, signal.SIGHUP)
        assert len(srv.wait_log(r"worker\d+\[\d+\] reload result=ok", 5)) >= 1
        # the session opened before the reload is still served ...
        assert open_session.cmd("NOOP")[0] == 250
        # ... and uses the new values from its next command on
        code, lines = open_session.cmd("EHLO again.example.net")
        assert code == 250 and lines[0] == "renamed.example.test"
        assert open_session.cmd("MAIL FROM:<a@remote.test>")[0] == 250
        for _ in range(3):
            assert open_session.cmd("RCPT TO:<alice@example.test>")[0] == 250
        assert open_session.cmd("RCPT TO:<alice@example.test>")[0] == 452
    assert rcpts_accepted(srv, 4) == 3


def test_sighup_with_broken_config_keeps_old_one(make_server):
    srv = make_server(conf={"smtp.max_recipients": 2})
    with open(srv.conf, "a", encoding="utf-8") as f:
        f.write("no such key = 1\n")
    os.kill(srv.pid, signal.SIGHUP)
    lines = srv.wait_log(r"reload result=failed", 5)
    assert lines and "unknown key" in lines[0] and srv.conf in lines[0]
    assert srv.alive()
    assert rcpts_accepted(srv, 3) == 2


def test_sighup_restart_key_is_reported(make_server):
    srv = make_server()
    srv.set_config({"workers": 7})
    os.kill(srv.pid, signal.SIGHUP)
    assert srv.wait_log(r"reload key=workers note=\"changed; takes effect after a restart\"", 5)
    assert rcpts_accepted(srv, 1) == 1


# ------------------------------------------------ every key, one at a time

def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _listen_port(value):
    m = re.fullmatch(r"(.*):(\d+)", value)
    assert m, value
    return m.group(1), int(m.group(2))


def _moved(value):
    """A listener value on another port (never opened: a restart key)."""
    host, port = _listen_port(value)
    return "%s:%d" % (host, port - 1 if port == 65535 else port + 1)


def _files(srv):
    """Files the new values point at, made once in the server's folder
    (readable by the workers' user)."""
    d = os.path.join(srv.dir, "reload-files")
    if os.path.isdir(d):
        return d
    for sub in ("webroot/.well-known/acme-challenge", "sni"):
        os.makedirs(os.path.join(d, sub))
    with open(os.path.join(d, "webroot/.well-known/acme-challenge/tok"), "w") as f:
        f.write("webroot-reloaded\n")
    for name in ("before.sieve", "after.sieve"):
        with open(os.path.join(d, name), "w") as f:
            f.write("keep;\n")
    with open(os.path.join(d, "relay.pw"), "w") as f:
        f.write("pw\n")
    shutil.copy(os.path.join(srv.dir, "tls", "cert.pem"), os.path.join(d, "cert.pem"))
    shutil.copy(os.path.join(srv.dir, "tls", "key.pem"), os.path.join(d, "key.pem"))
    for root, dirs, files in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    return d


def _relay(srv):
    d = _files(srv)
    return {"outbound.relay": "relay.test:2525", "outbound.relay_user": "u",
            "outbound.relay_password_file": os.path.join(d, "relay.pw")}


# A valid value different from tern init's (or the default) for every key
# of docs/config.md: a key added to the doc without a row here fails the
# test.  A callable gets (server, running config) and may return a dict
# when the key must change together with others (they go together).
NEW_VALUES = {
    "hostname": "reloaded.example.test",
    "data_dir": "data-moved",
    "user": lambda srv, cur: "daemon" if cur.get("user") == "nobody" else "nobody",
    "smtp.listen": lambda srv, cur: _moved(cur["smtp.listen"]),
    "pop3.listen": lambda srv, cur: _moved(cur["pop3.listen"]),
    "pop3s.listen": lambda srv, cur: _moved(cur["pop3s.listen"]),
    "managesieve.listen": lambda srv, cur: _moved(cur["managesieve.listen"]),
    "submission.listen": lambda srv, cur: _moved(cur["submission.listen"]),
    "submissions.listen": lambda srv, cur: _moved(cur["submissions.listen"]),
    "imap.listen": lambda srv, cur: _moved(cur["imap.listen"]),
    "imaps.listen": lambda srv, cur: _moved(cur["imaps.listen"]),
    "http.listen": lambda srv, cur: _moved(cur["http.listen"]),
    "https.listen": lambda srv, cur: _moved(cur["https.listen"]),
    "imap.max_line": "32K",
    "search.index_max_text": "2M",
    "http.webroot": lambda srv, cur: os.path.join(_files(srv), "webroot"),
    "http.max_header_size": "32K",
    "http.max_body_size": "128K",
    "http.timeout": "45s",
    "mta_sts.mode": "enforce",
    "mta_sts.max_age": "1d",
    "jmap.max_size_request": "5M",
    "jmap.max_calls_in_request": "32",
    "jmap.max_concurrent_requests": "8",
    "jmap.max_size_upload": "10M",
    "jmap.max_concurrent_upload": "2",
    "jmap.upload_expiry": "2h",
    "jmap.auth_cache_ttl": "1m",
    "tls.cert": lambda srv, cur: os.path.join(_files(srv), "cert.pem"),
    "tls.key": lambda srv, cur: os.path.join(_files(srv), "key.pem"),
    "tls.sni_dir": lambda srv, cur: os.path.join(_files(srv), "sni"),
    "dns.resolver": "127.0.0.1:5353",
    "remote_smtp_port": "2525",
    "workers": "1",
    "smtp.max_message_size": "10M",
    "smtp.max_recipients": "3",
    "smtp.max_connections": "4000",
    "smtp.max_errors": "5",
    "recipient_delimiter": "-",
    "postmaster": "bob@example.test",
    "log.level": "debug",
    "allow_plaintext_loopback": lambda srv, cur: (
        "no" if cur.get("allow_plaintext_loopback") == "yes" else "yes"),
    "auth.scram_plus": "yes",
    "auth.scram_iterations": "8192",
    "auth.fail_delay_ms": "100",
    "auth.fail_delay_max_ms": "9000",
    "auth.block_after": "20",
    "auth.block_window": "300",
    "auth.block_time": "60",
    "auth.prefix_v4": "16",
    "auth.prefix_v6": "48",
    "auth.prefix_block_after": "100",
    "auth.max_pending_per_ip": "4",
    "auth.max_pending_per_account": "4",
    "submission.domain_senders": "alice@example.test",
    "submission.received_user": "yes",
    "queue.retry_min": "1m",
    "queue.retry_max": "2h",
    "queue.delay_warning": "1h",
    "queue.lifetime": "2d",
    "queue.history": "1d",
    "queue.max_connections": "50",
    "queue.max_per_destination": "2",
    "queue.timeout.connect": "20s",
    "queue.timeout.greeting": "4m",
    "queue.timeout.command": "4m",
    "queue.timeout.data_init": "1m",
    "queue.timeout.data_block": "2m",
    "queue.timeout.data_end": "5m",
    "queue.timeout.dns": "20s",
    "outbound.tls": "off",
    "outbound.ca_file": lambda srv, cur: os.path.join(_files(srv), "cert.pem"),
    "outbound.relay": "relay.test:2525",
    "outbound.relay_user": lambda srv, cur: _relay(srv),
    "outbound.relay_password_file": lambda srv, cur: _relay(srv),
    "outbound.mta_sts": "no",
    "outbound.mta_sts_port": "8443",
    "sieve.max_script_size": "2M",
    "sieve.max_scripts": "8",
    "sieve.before": lambda srv, cur: os.path.join(_files(srv), "before.sieve"),
    "sieve.after": lambda srv, cur: os.path.join(_files(srv), "after.sieve"),
    "sieve.vacation_min_period": "2d",
    "sieve.vacation_max_period": "60d",
    "sieve.duplicate_period": "3d",
    "sieve.duplicate_max_period": "10d",
    "sieve.global_dir": lambda srv, cur: _files(srv),
    "mailauth.check": "no",
    "mailauth.trusted": "127.0.0.0/8 ::1",
    "mailauth.dmarc_reject": "junk",
    "mailauth.arc_trusted": "lists.example",
    "mailauth.timeout": "10s",
    "mailauth.reports": "no",
    "mailauth.report_interval": "12h",
    "mailauth.failure_reports": "yes",
    "mailauth.failure_report_limit": "5",
    "spam.dnsbl": "bl.example=3",
    "spam.dnswl": "wl.example",
    "spam.reject_score": "7",
    "spam.pregreet_wait": "2s",
    "spam.dns_timeout": "5s",
    "spam.fcrdns_weight": "2",
    "spam.helo_weight": "2",
    "spam.max_connections_per_ip": "30",
    "spam.connection_rate": "100",
    "spam.message_rate": "500",
    "spam.greylist_delay": "2m",
    "spam.greylist_expire": "2d",
    "spam.greylist_keep": "40d",
    "spam.greylist_auto_allow": "3",
    "spam.greylist_allow": "192.0.2.0/24 example.com",
    "spam.greylist_spf_passes": "2",
    "spam.content_check": "no",
    "spam.junk_score": "6",
    "spam.content_reject_score": "20",
    "spam.bayes_weight": "8",
    "spam.bayes_min_trained": "5",
    "spam.max_tokens": "100000",
    "spam.rule_missing_message_id": "2",
    "spam.rule_future_date": "3",
    "spam.rule_executable_attachment": "5",
    "spam.rule_spf_fail": "3",
    "spam.rule_spf_softfail": "2",
    "spam.rule_dmarc_fail": "4",
    "spam.allow_sent_recipients": "no",
    "milter.servers": "inet:127.0.0.1:1 unix:/nonexistent/milter.sock",
    "milter.default_action": "accept",
    "milter.timeout_connect": "3s",
    "milter.timeout_command": "20s",
    "milter.apply_to_submission": "yes",
    "quota.default_storage": "1G",
    "quota.default_messages": "100000",
    "quota.warning_percent": "80",
    # a port free now (base + N could be inside another test server's share)
    "metrics.listen": lambda srv, cur: "127.0.0.1:%d" % _free_port(),
    "metrics.tls": "yes",
    "metrics.password": "scrape-secret",
    "health.min_free_space": "1M",
    # not the tests' own address: every listener keeps working unproxied
    "proxy.trusted": "192.0.2.0/24 2001:db8::1",
    "proxy.timeout": "10s",
    "smtp.proxy_protocol": "yes",
    "submission.proxy_protocol": "yes",
    "submissions.proxy_protocol": "yes",
    "imap.proxy_protocol": "yes",
    "imaps.proxy_protocol": "yes",
    "pop3.proxy_protocol": "yes",
    "pop3s.proxy_protocol": "yes",
    "managesieve.proxy_protocol": "yes",
}


def _http_get(port, path, host):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout(10))
    conn.request("GET", path, headers={"Host": host})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def _ehlo(srv):
    with SMTPRaw(srv.host, srv.smtp_port) as c:
        lines = c.ehlo()
        c.cmd("QUIT")
        return lines


def _autoconfig_ports(srv, cur):
    status, data = _http_get(_listen_port(cur["http.listen"])[1], "/mail/config-v1.1.xml",
                             "autoconfig.example.test")
    assert status == 200, data
    return sorted(int(p) for p in re.findall(rb"<port>(\d+)</port>", data))


def _check_in_effect(srv, key, value, cur, autoconfig_ports):
    """For a few keys, shows through the protocols that the new value (or,
    for restart keys, still the old one) is what the server uses."""
    if key == "hostname":
        assert _ehlo(srv)[0] == value
    elif key == "smtp.max_message_size":
        assert "SIZE 10485760" in _ehlo(srv)
    elif key == "smtp.max_recipients":
        assert rcpts_accepted(srv, 4) == 3
    elif key == "postmaster":
        # a bare <postmaster> goes to the new one (bob, not alice, the
        # first account that the derived postmaster@example.test reaches)
        with SMTPRaw(srv.host, srv.smtp_port) as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<a@remote.test>")[0] == 250
            assert c.cmd("RCPT TO:<postmaster>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            assert c.cmd("Subject: to-the-postmaster\r\n\r\nhi\r\n.")[0] == 250
            c.cmd("QUIT")
        assert len(srv.find_messages(value, "to-the-postmaster")) == 1
    elif key == "http.webroot":
        status, data = _http_get(_listen_port(cur["http.listen"])[1],
                                 "/.well-known/acme-challenge/tok", HOSTNAME)
        assert (status, data) == (200, b"webroot-reloaded\n")
    elif key == "metrics.listen":
        # off at the start (init leaves it commented out): still nothing there
        with pytest.raises(OSError):
            socket.create_connection((HOST, _listen_port(value)[1]), timeout=timeout(5)).close()
    elif key.endswith(".listen"):
        # the old port still serves; nothing was opened on the new one
        # (nor advertised: autoconfig still names the running ports)
        port = _listen_port(cur[key])[1]
        with socket.create_connection((HOST, port), timeout=timeout(5)) as s:
            if key.split(".")[0] in ("smtp", "submission", "imap", "pop3"):
                s.settimeout(timeout(5))
                assert s.recv(100)[:1] in (b"2", b"*", b"+")
        with pytest.raises(OSError):
            socket.create_connection((HOST, _listen_port(value)[1]), timeout=timeout(5)).close()
        assert _autoconfig_ports(srv, cur) == autoconfig_ports, key


def test_every_documented_key_reloads_as_documented(make_server):
    doc = doc_config_keys()
    assert sorted(doc) == sorted(NEW_VALUES), (
        "docs/config.md and NEW_VALUES differ: give each new key a new value here")
    srv = make_server()
    base = srv.read_config()
    with open(srv.conf, encoding="utf-8") as f:
        base_text = f.read()
    # the defaults of the keys init leaves commented out ("# key = value")
    defaults = dict(re.findall(r"(?m)^# ([a-z0-9_.]+) =[ ]?(.*)$", base_text))
    ports_before = _autoconfig_ports(srv, base)
    n_procs = len(srv.children()) + 1  # the master, workers, queue runner
    assert n_procs >= 3
    for key, restart in doc.items():
        new = NEW_VALUES[key]
        if callable(new):
            new = new(srv, base)
        changes = new if isinstance(new, dict) else {key: new}
        value = changes[key]
        old = base.get(key, defaults.get(key))
        assert value != old, (key, value)
        # the file as init wrote it, with only this key (and its partners)
        # changed: the previous key is back at its running value
        with open(srv.conf, "w", encoding="utf-8") as f:
            f.write(base_text)
        srv.set_config(changes)
        mark = srv.log_mark()
        os.kill(srv.pid, signal.SIGHUP)
        done = srv.wait_log(r"\] reload result=", 10, since=mark, count=n_procs)
        assert len(done) == n_procs, (key, done)
        assert all("reload result=ok" in l for l in done), (key, done)
        assert len([l for l in done if re.search(r" master\[\d+\] ", l)]) == 1, done
        text = srv.log()[mark:]
        warned = re.findall(r"reload key=(\S+) note=\"changed; takes effect after a restart\"",
                            text)
        if restart:
            assert warned == [key], (key, warned)
        else:
            assert warned == [], (key, warned)
        if key in ("tls.cert", "tls.key", "tls.sni_dir"):
            assert re.search(r"master\[\d+\] tls action=reload result=ok", text), text
        if key == "dns.resolver":
            assert "queue action=reload key=dns.resolver resolver=%s" % value in text, text
        # the running server still answers
        assert srv.alive()
        assert _ehlo(srv)[0] == (value if key == "hostname" else HOSTNAME)
        _check_in_effect(srv, key, value, base, ports_before)
    # no restart key was half-applied on the way
    assert _autoconfig_ports(srv, base) == ports_before
    assert srv.workers() and len(srv.children()) == n_procs - 1


def test_worker_restarted_after_a_reload_runs_the_reloaded_config(make_server):
    """The master keeps the config it re-read (with the running values of
    the restart keys), so a worker that dies after a SIGHUP comes back
    with the new values, not the ones of the start."""
    srv = make_server(conf={"workers": 1, "smtp.max_recipients": 2})
    assert len(srv.workers()) == 1
    srv.set_config({"workers": 1, "smtp.max_recipients": 3, "smtp.listen": _moved(
        srv.read_config()["smtp.listen"])})
    mark = srv.log_mark()
    os.kill(srv.pid, signal.SIGHUP)
    n_procs = len(srv.children()) + 1
    assert len(srv.wait_log(r"\] reload result=ok", 10, since=mark, count=n_procs)) == n_procs
    assert srv.wait_log(r"reload key=smtp.listen note=", 5, since=mark)
    assert rcpts_accepted(srv, 4) == 3
    srv.allow_worker_deaths = True
    (victim,) = srv.workers()
    mark = srv.log_mark()
    os.kill(victim, signal.SIGKILL)
    assert srv.wait_log(r"worker1\[\d+\] worker action=start", 10, since=mark)
    assert srv.workers() and srv.workers() != [victim]
    # the new worker has the reloaded limit, and listens where the old did
    assert rcpts_accepted(srv, 4) == 3

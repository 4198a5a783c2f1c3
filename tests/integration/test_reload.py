"""SIGHUP reloads the config without dropping connections (docs/config.md)."""
import os
import signal

from conftest import SMTPRaw


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

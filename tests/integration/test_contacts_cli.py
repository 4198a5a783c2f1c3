"""`tern contacts list|export|import` (issue 21, docs/contacts.md
"Commands"): vCards imported from a file are kept byte for byte and
exported the same, a vCard without UID gets one, importing again replaces
rather than duplicates, a bad vCard is said and skipped (exit 1) while the
others are stored, and the CSV export has Google Contacts' columns with
the exact values."""

import csv
import io

import pytest

ALICE = "alice@example.test"

ANN = (b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:ann-1\r\nFN:Ann Smith\r\n"
       b"N:Smith;Ann;Marie;Dr.;PhD\r\nNICKNAME:Annie\r\n"
       b"EMAIL;TYPE=work:ann@example.test\r\nEMAIL;TYPE=home:ann@home.test\r\n"
       b"TEL;TYPE=cell:+1 555 0100\r\nORG:Acme\\, Inc.;Sales\r\nTITLE:Boss\r\n"
       b"BDAY:19800102\r\nNOTE:line one\\nline \"two\"\r\nCATEGORIES:friends,work\r\n"
       b"X-UNKNOWN;X-P=1:kept\r\nEND:VCARD\r\n")
BOB_V3 = (b"BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nN:Jones;Bob;;;\n"
          b"TEL;HOME:+33 1 23\nEND:VCARD\n")
BAD = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:bad\r\nFN:\xff\r\nEND:VCARD\r\n"
FOLD = (b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:fold\r\nFN:Folded\r\nNOTE:a long\r\n"
        b"note\r\nEND:VCARD\r\n")


@pytest.fixture(scope="module")
def srv(module_server):
    return module_server()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_import_list_export(srv, tmp_path):
    r = srv.cli("contacts", "import", ALICE, write(tmp_path, "a.vcf", ANN + BOB_V3 + BAD + FOLD))
    assert r.returncode == 1
    assert r.stdout == b"imported 2, replaced 0, refused 2\n"
    err = r.stderr.decode()
    assert "tern: contacts import: the vCard at line 23: line 4: invalid UTF-8; skipped\n" in err
    assert ("tern: contacts import: the vCard at line 28: line 6: no ':' after the property "
            "name (a folded line without its leading space?); skipped\n") in err

    r = srv.cli_ok("contacts", "list", ALICE)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2
    bob = [l for l in lines if "\tBob\t" in l][0].split("\t")
    assert bob[0] == "contacts" and bob[1].endswith(".vcf") and bob[3] == ""
    ann = [l for l in lines if "\tAnn Smith\t" in l][0].split("\t")
    assert ann[2:] == ["Ann Smith", "ann@example.test, ann@home.test"]

    # vCard export: Ann byte for byte; Bob with the UID line added.
    out = srv.cli_ok("contacts", "export", ALICE, "--format", "vcard").stdout
    assert ANN in out
    bob_out = out.replace(ANN, b"")
    assert bob_out.startswith(b"BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nN:Jones;Bob;;;\n"
                              b"TEL;HOME:+33 1 23\nUID:urn:uuid:")
    assert bob_out.endswith(b"\r\nEND:VCARD\n")
    assert srv.cli_ok("contacts", "export", ALICE).stdout == out

    # Importing both again replaces them: no duplicate.
    again = write(tmp_path, "b.vcf", ANN + BOB_V3)
    r = srv.cli_ok("contacts", "import", ALICE, again)
    assert r.stdout == b"imported 0, replaced 2, refused 0\n"
    assert len(srv.cli_ok("contacts", "list", ALICE).stdout.splitlines()) == 2
    assert srv.cli_ok("contacts", "export", ALICE).stdout == out


def test_csv_export(srv, tmp_path):
    srv.cli_ok("contacts", "import", "bob@example.test", write(tmp_path, "a.vcf", ANN))
    out = srv.cli_ok("contacts", "export", "bob@example.test", "--format", "csv").stdout
    assert out.count(b"\r\n") == 2  # header, Ann (the note's LF is inside quotes)
    rows = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert rows[0] == [
        "First Name", "Middle Name", "Last Name", "Name Prefix", "Name Suffix", "Nickname",
        "File As", "Organization Name", "Organization Title", "Birthday", "Notes", "Labels",
        "E-mail 1 - Label", "E-mail 1 - Value", "E-mail 2 - Label", "E-mail 2 - Value",
        "E-mail 3 - Label", "E-mail 3 - Value", "Phone 1 - Label", "Phone 1 - Value",
        "Phone 2 - Label", "Phone 2 - Value", "Phone 3 - Label", "Phone 3 - Value"]
    assert rows[1] == [
        "Ann", "Marie", "Smith", "Dr.", "PhD", "Annie", "Ann Smith", "Acme, Inc.", "Boss",
        "19800102", 'line one\nline "two"', "friends ::: work", "Work", "ann@example.test",
        "Home", "ann@home.test", "", "", "Cell", "+1 555 0100", "", "", "", ""]
    assert len(rows) == 2


def test_errors(srv, tmp_path):
    r = srv.cli("contacts", "export", ALICE, "--format", "ldif")
    assert r.returncode == 2
    assert r.stderr.startswith(b"tern: contacts export: --format is vcard or csv, not ldif\n")
    r = srv.cli("contacts", "list", "nobody@example.test")
    assert r.returncode == 1
    assert r.stderr == b"tern: contacts list: no such user nobody@example.test\n"
    r = srv.cli("contacts", "export", ALICE, "--book", "nope")
    assert r.returncode == 1
    assert r.stderr == b"tern: contacts export: no address book nope\n"
    r = srv.cli("contacts", "import", ALICE, str(tmp_path / "missing.vcf"))
    assert r.returncode == 1
    assert r.stderr.endswith(b"missing.vcf: No such file or directory\n")
    r = srv.cli("contacts", "import", ALICE, write(tmp_path, "t.vcf", b"BEGIN:VCARD\r\nFN:x\r\n"))
    assert r.returncode == 1
    assert r.stderr == b"tern: contacts import: the vCard at line 1 has no END:VCARD; skipped\n"
    # The default books are there, empty, for a user who never had contacts.
    assert srv.cli_ok("contacts", "list", "carol@example.org").stdout == b""

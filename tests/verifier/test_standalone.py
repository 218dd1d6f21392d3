"""The standalone verifier (``verifier/``, ``exchange-verify``) against logs, checkpoints and
bundles the hub produced, and against tampered copies; with the hub's own verifier run on
the same inputs, the two must agree."""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from exchange_verify import merkle
from exchange_verify.cli import main
from typer.testing import CliRunner

from exchange.audit import service as audit_service
from exchange.audit.notes import Checkpoint as HubCheckpoint
from exchange.audit.notes import KeyType, Note, cosign, sign_checkpoint, verifier_key
from exchange.audit.notes import Verifier as HubVerifier
from exchange.audit.verify import TrustedState, VerificationFailed, check_evidence, verify_export
from exchange.cli import app as cli
from exchange.crypto import raw_public_bytes
from exchange.hub import Hub
from exchange.settings import Settings

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "audit" / "testdata" / "rfc9162"
Lines = list[dict[str, Any]]


def run(*args: str) -> tuple[int, dict[str, Any]]:
    """exchange-verify in this process, --json; its exit code and document."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*args, "--json"])
    return code, json.loads(out.getvalue())


@pytest.fixture
def hub_log(runner: CliRunner, tmp_path: Path) -> tuple[str, Lines]:
    """The log key and the export of a hub set up with the demo directory (about 40 events
    over several checkpoints)."""
    init = runner.invoke(cli, ["init", "--demo", "--json"])
    assert init.exit_code == 0, init.stdout
    vkey = next(
        k["note_verifier_key"]
        for k in json.loads(init.stdout)["published_keys"]["keys"]
        if k["use"] == "checkpoint"
    )
    for n in range(2):  # two checkpoints at least: integrate, add an agency, integrate
        assert runner.invoke(cli, ["audit", "integrate"]).exit_code == 0
        runner.invoke(
            cli,
            ["agency", "add", f"extra-{n}", "--name", "Extra", "--kind", "other",
             "--jurisdiction", "36"],
        )  # fmt: skip
    assert runner.invoke(cli, ["audit", "integrate"]).exit_code == 0
    export = tmp_path / "log.ndjson"
    assert runner.invoke(cli, ["audit", "export", "--output", str(export)]).exit_code == 0
    return vkey, [json.loads(line) for line in export.read_text().splitlines()]


def write(path: Path, lines: Lines) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def hub_verdict(lines: Lines, vkey: str, **options: Any) -> str | None:
    try:
        verify_export(
            [json.dumps(line) for line in lines], log_key=HubVerifier.parse(vkey), **options
        )
    except VerificationFailed as failure:
        return str(failure)
    return None


def events(lines: Lines) -> list[int]:
    return [i for i, line in enumerate(lines) if line["type"] == "event"]


def altered(lines: Lines, position: int, change: Callable[[bytes], bytes]) -> Lines:
    copy = [dict(line) for line in lines]
    event = base64.b64decode(copy[position]["event"])
    copy[position]["event"] = base64.b64encode(change(event)).decode()
    return copy


def test_the_genuine_log_verifies_from_the_installed_command(
    hub_log: tuple[str, Lines], tmp_path: Path
) -> None:
    vkey, lines = hub_log
    export = write(tmp_path / "log.ndjson", lines)
    state = tmp_path / "auditor.json"
    answer = subprocess.run(
        [sys.executable, "-m", "exchange_verify", "log", str(export), "--log-key", vkey,
         "--state", str(state), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    document = json.loads(answer.stdout)
    size = lines[0]["size"]
    assert document["ok"] is True
    assert document["size"] == size == len(events(lines))
    assert document["checkpoints"] == sum(1 for line in lines if line["type"] == "checkpoint")
    assert document["checkpoints"] >= 2
    assert json.loads(state.read_text())["size"] == size
    assert hub_verdict(lines, vkey) is None
    human = subprocess.run(
        [sys.executable, "-m", "exchange_verify", "log", str(export), "--log-key", vkey],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert human.stdout.startswith(f"OK: {size} events")


def tampered_logs(lines: Lines) -> dict[str, tuple[Lines, str]]:
    """Name -> (tampered export, what exchange-verify must say)."""
    positions = events(lines)
    third = positions[3]
    with_leaf = altered(lines, third, lambda b: b.replace(b'"actor"', b'"Actor"'))
    with_leaf[third]["leaf_hash"] = base64.b64encode(
        merkle.leaf_hash(base64.b64decode(with_leaf[third]["event"]))
    ).decode()
    swapped = [dict(line) for line in lines]
    swapped[positions[1]]["event"], swapped[positions[2]]["event"] = (
        lines[positions[2]]["event"],
        lines[positions[1]]["event"],
    )
    return {
        "event bytes altered": (
            altered(lines, third, lambda b: b.replace(b'"actor"', b'"Actor"')),
            "do not hash to its logged leaf",
        ),
        "bytes and leaf rewritten": (with_leaf, "do not give the signed root"),
        "an event removed": (
            [line for i, line in enumerate(lines) if i != positions[5]],
            "out of order or missing",
        ),
        "two events swapped": (swapped, "do not hash to its logged leaf"),
        "the log cut short": (lines[: positions[-1]], "event missing"),
    }


def test_every_tampered_log_fails_in_both_verifiers(
    hub_log: tuple[str, Lines], tmp_path: Path
) -> None:
    vkey, lines = hub_log
    for name, (tampered, reason) in tampered_logs(lines).items():
        code, document = run("log", str(write(tmp_path / "t.ndjson", tampered)), "--log-key", vkey)
        assert code == 1, name
        assert reason in document["reason"], (name, document)
        assert hub_verdict(tampered, vkey) is not None, name


def test_a_checkpoint_signed_by_another_key_or_of_another_log_fails(
    hub_log: tuple[str, Lines], tmp_path: Path
) -> None:
    vkey, lines = hub_log
    impostor = Ed25519PrivateKey.generate()
    origin = vkey.split("+")[0]
    impostor_vkey = verifier_key(origin, KeyType.ed25519, raw_public_bytes(impostor.public_key()))
    code, document = run(
        "log", str(write(tmp_path / "l.ndjson", lines)), "--log-key", impostor_vkey
    )
    assert (code, document["ok"]) == (1, False)
    assert "no valid signature" in document["reason"]

    forged = [dict(line) for line in lines]
    last = max(i for i, line in enumerate(forged) if line["type"] == "checkpoint")
    body = Note.parse(forged[last]["note"]).body
    size = int(body.split("\n")[1])
    bad_root = HubCheckpoint(origin=origin, size=size, root_hash=b"\x07" * 32)
    forged[last]["note"] = sign_checkpoint(bad_root, origin, impostor).text()
    code, document = run("log", str(write(tmp_path / "f.ndjson", forged)), "--log-key", vkey)
    assert code == 1
    assert "no valid signature" in document["reason"]
    # A cosignature key given as the log's key is refused as such.
    witness = Ed25519PrivateKey.generate()
    witness_vkey = verifier_key(
        "w.test/w", KeyType.cosignature_v1, raw_public_bytes(witness.public_key())
    )
    code, document = run("log", str(tmp_path / "l.ndjson"), "--log-key", witness_vkey)
    assert code == 1
    assert "not a log (Ed25519) verifier key" in document["reason"]


def test_state_catches_a_rollback_and_a_fork(hub_log: tuple[str, Lines], tmp_path: Path) -> None:
    vkey, lines = hub_log
    export = write(tmp_path / "log.ndjson", lines)
    state = tmp_path / "auditor.json"
    assert run("log", str(export), "--log-key", vkey, "--state", str(state))[0] == 0
    seen = json.loads(state.read_text())

    state.write_text(json.dumps({**seen, "size": seen["size"] + 5}))
    code, document = run("log", str(export), "--log-key", vkey, "--state", str(state))
    assert code == 1
    assert "beyond the log's newest" in document["reason"]

    state.write_text(json.dumps({**seen, "root": base64.b64encode(b"\x01" * 32).decode()}))
    code, document = run("log", str(export), "--log-key", vkey, "--state", str(state))
    assert code == 1
    assert "fork" in document["reason"]
    assert json.loads(state.read_text())["root"] != seen["root"]  # a failed run leaves it


@dataclass(frozen=True)
class Witnessed:
    """The export with its oldest checkpoint cosigned by a witness and the newest not yet,
    as on a live hub."""

    lines: Lines
    export: Path
    witness: str  # the witness's verifier key
    position: int  # of the cosigned checkpoint's line
    size: int  # of the cosigned checkpoint


def cosigned_oldest(lines: Lines, tmp_path: Path) -> Witnessed:
    witness_key = Ed25519PrivateKey.generate()
    witness = verifier_key(
        "bp3mi.test/w", KeyType.cosignature_v1, raw_public_bytes(witness_key.public_key())
    )
    position = next(i for i, line in enumerate(lines) if line["type"] == "checkpoint")
    cosigned = [dict(line) for line in lines]
    note = Note.parse(cosigned[position]["note"])
    line = cosign(note.body, "bp3mi.test/w", witness_key, timestamp=1_700_000_000)
    cosigned[position]["note"] = note.with_signature(line).text()
    size = int(note.body.split("\n")[1])
    return Witnessed(cosigned, write(tmp_path / "c.ndjson", cosigned), witness, position, size)


def test_witness_quorum_on_the_newest_cosigned_checkpoint(
    hub_log: tuple[str, Lines], tmp_path: Path
) -> None:
    vkey, lines = hub_log
    witnessed = cosigned_oldest(lines, tmp_path)
    cosigned, export, witness = witnessed.lines, witnessed.export, witnessed.witness
    checkpoints = [i for i, line in enumerate(lines) if line["type"] == "checkpoint"]
    first = witnessed.position

    code, document = run("log", str(export), "--log-key", vkey, "--witness", witness,
                         "--quorum", "1")  # fmt: skip
    assert code == 0, document
    assert document["cosigned_by"] == ["bp3mi.test/w"]
    assert document["witnessed_size"] == witnessed.size < document["size"]
    hub = verify_export(
        [json.dumps(x) for x in cosigned],
        log_key=HubVerifier.parse(vkey),
        witnesses=[HubVerifier.parse(witness)],
        quorum=1,
    )
    assert hub.witnessed is not None
    assert hub.witnessed.size == document["witnessed_size"]

    code, document = run("log", str(export), "--log-key", vkey, "--witness", witness,
                         "--quorum", "2")  # fmt: skip
    assert code == 1
    assert "2 valid witness cosignature(s) required" in document["reason"]
    stranger = verifier_key(
        "bp3mi.test/w",
        KeyType.cosignature_v1,
        raw_public_bytes(Ed25519PrivateKey.generate().public_key()),
    )
    code, _ = run("log", str(export), "--log-key", vkey, "--witness", stranger, "--quorum", "1")
    assert code == 1

    # The same checkpoint on its own, then against the export it belongs to.
    note_file = tmp_path / "checkpoint.txt"
    note_file.write_text(cosigned[first]["note"])
    code, document = run("checkpoint", str(note_file), "--log-key", vkey, "--witness", witness,
                         "--quorum", "1", "--export", str(export))  # fmt: skip
    assert code == 0, document
    assert document["in_export"] is True
    shorter = write(tmp_path / "short.ndjson", [lines[0], *[lines[i] for i in checkpoints[:1]]])
    later = tmp_path / "later.txt"
    later.write_text(lines[checkpoints[-1]]["note"])
    code, document = run("checkpoint", str(later), "--log-key", vkey, "--export", str(shorter))
    assert code == 1
    assert "beyond the log's newest" in document["reason"]


def vector_files(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files
    return files


def test_the_merkle_proofs_against_every_rfc9162_vector() -> None:
    def b64(value: str | None) -> bytes:
        return base64.b64decode(value or "")

    for path in vector_files("inclusion"):
        case = json.loads(path.read_text())
        args = (case["leafIdx"], case["treeSize"], b64(case["leafHash"]),
                [b64(p) for p in case["proof"] or []], b64(case["root"]))  # fmt: skip
        if case["wantErr"]:
            with pytest.raises(ValueError, match=r"proof|index|hash"):
                merkle.verify_inclusion(*args)
        else:
            merkle.verify_inclusion(*args)
    for path in vector_files("consistency"):
        case = json.loads(path.read_text())
        args2 = (case["size1"], case["size2"], b64(case["root1"]), b64(case["root2"]),
                 [b64(p) for p in case["proof"] or []])  # fmt: skip
        if case["wantErr"]:
            with pytest.raises(ValueError, match=r"proof|size|roots"):
                merkle.verify_consistency(*args2)
        else:
            merkle.verify_consistency(*args2)


def test_the_tree_root_equals_the_hubs_at_every_size() -> None:
    from exchange.audit import merkle as hub_merkle

    tree, hub_tree = merkle.Tree(), hub_merkle.CompactRange()
    assert tree.root() == hub_tree.root() == merkle.EMPTY_ROOT
    for size in range(1, 300):
        leaf = merkle.leaf_hash(size.to_bytes(4, "big"))
        tree.append(leaf)
        hub_tree.append(leaf)
        assert tree.root() == hub_tree.root(), size


def test_the_package_needs_nothing_but_cryptography_and_shares_no_code_with_the_hub() -> None:
    project = tomllib.loads((REPO / "verifier" / "pyproject.toml").read_text())["project"]
    assert [d.split(">")[0] for d in project["dependencies"]] == ["cryptography"]
    for source in (REPO / "verifier" / "exchange_verify").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names | {"cryptography", "exchange_verify"}, (
                    source.name,
                    name,
                )


def test_a_quorum_below_what_the_auditor_trusts_fails_and_state_keeps_only_the_witnessed(
    hub_log: tuple[str, Lines], tmp_path: Path
) -> None:
    vkey, lines = hub_log
    witnessed = cosigned_oldest(lines, tmp_path)
    cosigned, export, witness = witnessed.lines, witnessed.export, witnessed.witness
    witnessed_size = witnessed.size
    quorum = ("--witness", witness, "--quorum", "1")

    state = tmp_path / "auditor.json"
    assert run("log", str(export), "--log-key", vkey, "--state", str(state), *quorum)[0] == 0
    assert json.loads(state.read_text())["size"] == witnessed_size  # not the newest
    assert run("log", str(export), "--log-key", vkey, "--state", str(state), *quorum)[0] == 0

    # Trusting the newest (no witness asked), then asking a quorum only an older one has.
    newest = tmp_path / "newest.json"
    assert run("log", str(export), "--log-key", vkey, "--state", str(newest))[0] == 0
    code, document = run("log", str(export), "--log-key", vkey, "--state", str(newest), *quorum)
    assert code == 1
    assert "below the" in document["reason"]
    trusted = json.loads(newest.read_text())
    seen = TrustedState(trusted["size"], base64.b64decode(trusted["root"]), note="")
    with pytest.raises(VerificationFailed, match="below the"):
        verify_export(
            [json.dumps(x) for x in cosigned],
            log_key=HubVerifier.parse(vkey),
            state=seen,
            witnesses=[HubVerifier.parse(witness)],
            quorum=1,
        )
    # One witness key given twice is one witness.
    code, document = run("log", str(export), "--log-key", vkey, "--witness", witness,
                         "--witness", witness, "--quorum", "2")  # fmt: skip
    assert code == 1


MANGLED_VALUES: list[Any] = [None, [], {}, 7, "", "²", "é==", "AAAA", [1, 2], {"a": None}]


def mangled(document: dict[str, Any]) -> list[Any]:
    """Copies of ``document`` with one field (at any depth in the first entry of each list)
    replaced by a value of the wrong type or shape."""
    copies = []
    for name in list(document):
        for value in MANGLED_VALUES:
            copies.append({**document, name: value})
        entries = document[name]
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            for field in entries[0]:
                for value in MANGLED_VALUES:
                    copies.append({**document, name: [{**entries[0], field: value}, *entries[1:]]})
    return copies


def test_malformed_bundles_and_exports_fail_cleanly_in_both_verifiers(
    hub_log: tuple[str, Lines], runner: CliRunner, tmp_path: Path
) -> None:
    vkey, lines = hub_log
    hub = Hub.start(Settings())
    try:
        with hub.session() as session:
            bundle = audit_service.evidence(session, subject="agency:extra-0")
    finally:
        hub.close()
    assert bundle["events"]
    assert run_evidence(bundle, vkey, tmp_path)[0] == 0
    hub_key = HubVerifier.parse(vkey)
    for copy in [*mangled(bundle), [], "text", {"checkpoint": 5}]:
        code, document = run_evidence(copy, vkey, tmp_path)  # a document, never a crash
        assert code == (0 if document["ok"] else 1)
        try:
            hub_ok = not check_evidence(copy, log_key=hub_key).problems
        except VerificationFailed:
            hub_ok = False
        assert hub_ok == document["ok"], (copy, document)
    header, *rest = lines
    first_event = next(i for i, line in enumerate(rest) if line["type"] == "event")
    for record in mangled({"event": rest[first_event]})[1:]:
        broken = [header, *rest[:first_event], record["event"], *rest[first_event + 1 :]]
        if not isinstance(broken[first_event + 1], dict):
            continue
        code, _ = run("log", str(write(tmp_path / "m.ndjson", broken)), "--log-key", vkey)
        assert (code == 0) == (hub_verdict(broken, vkey) is None), record


def run_evidence(bundle: Any, vkey: str, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    return run("evidence", str(path), "--log-key", vkey)

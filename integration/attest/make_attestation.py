#!/usr/bin/env python3
"""Make a real, signed SLSA provenance attestation (a DSSE envelope) for tests.

The in-toto Statement (with a SLSA provenance v1 or v0.2 predicate) is built
here as plain data; securesystemslib signs it: its CryptoSigner (from a PEM
PKCS#8 private key, e.g. one written by `portcullis-testsign keygen`) and its
DSSE Envelope, which signs the DSSE pre-authentication encoding
`DSSEv1 <len(type)> <type> <len(body)> <body>`. The output is the envelope as
JSON (`application/vnd.dsse.envelope.v1+json`): payloadType, base64 payload,
signatures[{keyid, sig}].

Options that build negative cases: --payload-type (a wrong envelope payload
type), --statement-version v0.1, --malform (a schema-invalid predicate).
Attach the result with `portcullis-testsign attach-attestation`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPES = {
    "v1": "https://in-toto.io/Statement/v1",
    "v0.1": "https://in-toto.io/Statement/v0.1",
}
PREDICATE_TYPES = {
    "v1": "https://slsa.dev/provenance/v1",
    "v0.2": "https://slsa.dev/provenance/v0.2",
}
DEFAULT_BUILD_TYPES = {
    "v1": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
    "v0.2": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
}
MALFORMS = ("missing-builder-id", "builder-id-number", "missing-build-definition")
DEFAULT_REF = "refs/heads/main"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Make a signed DSSE envelope holding an in-toto Statement "
        "with a SLSA provenance predicate (test tool)."
    )
    p.add_argument("--key", required=True, type=Path, help="PEM PKCS#8 private key")
    p.add_argument("--subject-digest", required=True, help="sha256:HEX of the image")
    p.add_argument("--subject-name", required=True, help="subject name, e.g. the repository")
    p.add_argument("--predicate-version", required=True, choices=sorted(PREDICATE_TYPES))
    p.add_argument("--builder-id", required=True, help="builder.id URI")
    p.add_argument("--source-uri", required=True, help="e.g. https://github.com/org/repo")
    p.add_argument("--source-ref", default=DEFAULT_REF, help=f"git ref (default {DEFAULT_REF})")
    p.add_argument("--build-type", help="buildType URI (default: a GitHub Actions one)")
    p.add_argument("--finished-on", help="RFC 3339 time the build finished (default: now)")
    p.add_argument(
        "--payload-type",
        default=IN_TOTO_PAYLOAD_TYPE,
        help=f"envelope payloadType (default {IN_TOTO_PAYLOAD_TYPE})",
    )
    p.add_argument("--statement-version", default="v1", choices=sorted(STATEMENT_TYPES))
    p.add_argument("--malform", choices=MALFORMS, help="make the predicate schema-invalid")
    p.add_argument("--keyid", help="keyid recorded in the signature (default: securesystemslib's)")
    p.add_argument("--out", required=True, type=Path, help="where to write the envelope JSON")
    args = p.parse_args(argv)

    algo, _, hexdigest = args.subject_digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or set(hexdigest) - set("0123456789abcdef"):
        p.error(f"--subject-digest must be sha256:<64 lowercase hex>, got {args.subject_digest!r}")
    args.subject_hex = hexdigest
    if args.finished_on is None:
        args.finished_on = datetime.now(timezone.utc).replace(microsecond=0)
    else:
        try:
            args.finished_on = datetime.fromisoformat(args.finished_on.replace("Z", "+00:00"))
        except ValueError:
            p.error(f"--finished-on is not an RFC 3339 time: {args.finished_on!r}")
        if args.finished_on.tzinfo is None:
            p.error("--finished-on needs a time zone (e.g. ...Z)")
    if args.build_type is None:
        args.build_type = DEFAULT_BUILD_TYPES[args.predicate_version]
    return args


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def fake_commit(source_uri: str, ref: str) -> str:
    """A stable 40-hex git commit id for the source and ref (data only)."""
    return hashlib.sha1(f"{source_uri}@{ref}".encode()).hexdigest()


def github_repository(source_uri: str) -> str:
    """`org/repo` from a GitHub URL, else the URI's path."""
    path = source_uri.split("://", 1)[-1].split("/", 1)[-1]
    return path.removesuffix(".git")


def predicate_v1(args: argparse.Namespace, commit: str, started: datetime) -> dict:
    source = f"git+{args.source_uri}@{args.source_ref}"
    return {
        "buildDefinition": {
            "buildType": args.build_type,
            "externalParameters": {
                # The GitHub Actions workflow form of the build type, plus a
                # plain `source` for verifiers that look for one.
                "workflow": {
                    "ref": args.source_ref,
                    "repository": args.source_uri,
                    "path": ".github/workflows/release.yml",
                },
                "source": {"uri": source, "digest": {"gitCommit": commit}},
            },
            "internalParameters": {
                "github": {
                    "event_name": "push",
                    "repository_id": "1",
                    "runner_environment": "github-hosted",
                }
            },
            "resolvedDependencies": [{"uri": source, "digest": {"gitCommit": commit}}],
        },
        "runDetails": {
            "builder": {"id": args.builder_id},
            "metadata": {
                "invocationId": f"{args.source_uri}/actions/runs/1/attempts/1",
                "startedOn": rfc3339(started),
                "finishedOn": rfc3339(args.finished_on),
            },
        },
    }


def predicate_v02(args: argparse.Namespace, commit: str, started: datetime) -> dict:
    source = f"git+{args.source_uri}@{args.source_ref}"
    return {
        "builder": {"id": args.builder_id},
        "buildType": args.build_type,
        "invocation": {
            "configSource": {
                "uri": source,
                "digest": {"sha1": commit},
                "entryPoint": ".github/workflows/release.yml",
            },
            "parameters": {},
            "environment": {"github_repository": github_repository(args.source_uri)},
        },
        "metadata": {
            "buildInvocationId": f"{args.source_uri}/actions/runs/1/attempts/1",
            "buildStartedOn": rfc3339(started),
            "buildFinishedOn": rfc3339(args.finished_on),
            "completeness": {"parameters": True, "environment": False, "materials": False},
            "reproducible": False,
        },
        "materials": [{"uri": source, "digest": {"sha1": commit}}],
    }


def malform(predicate: dict, version: str, how: str) -> None:
    builder = predicate["runDetails"]["builder"] if version == "v1" else predicate["builder"]
    if how == "missing-builder-id":
        del builder["id"]
    elif how == "builder-id-number":
        builder["id"] = 42
    elif how == "missing-build-definition":
        if version == "v1":
            del predicate["buildDefinition"]
        else:
            # v0.2 has no buildDefinition: drop its counterparts.
            del predicate["buildType"]
            del predicate["invocation"]


def statement(args: argparse.Namespace) -> dict:
    commit = fake_commit(args.source_uri, args.source_ref)
    started = args.finished_on - timedelta(minutes=3)
    if args.predicate_version == "v1":
        predicate = predicate_v1(args, commit, started)
    else:
        predicate = predicate_v02(args, commit, started)
    if args.malform:
        malform(predicate, args.predicate_version, args.malform)
    return {
        "_type": STATEMENT_TYPES[args.statement_version],
        "subject": [{"name": args.subject_name, "digest": {"sha256": args.subject_hex}}],
        "predicateType": PREDICATE_TYPES[args.predicate_version],
        "predicate": predicate,
    }


def load_signer(path: Path) -> CryptoSigner:
    private_key = load_pem_private_key(path.read_bytes(), password=None)
    # The public key (and its default keyid) is derived from the private key.
    return CryptoSigner(private_key)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        signer = load_signer(args.key)
    except (OSError, ValueError, TypeError) as err:
        print(f"make_attestation: cannot load {args.key}: {err}", file=sys.stderr)
        return 1
    payload = json.dumps(statement(args), separators=(",", ":"), sort_keys=True).encode()
    envelope = Envelope(payload=payload, payload_type=args.payload_type, signatures={})
    envelope.sign(signer)
    out = envelope.to_dict()
    if args.keyid is not None:
        for sig in out["signatures"]:
            sig["keyid"] = args.keyid
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} ({args.predicate_version} provenance for {args.subject_digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

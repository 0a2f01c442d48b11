#!/usr/bin/env python3
"""Fails when libshmbus.so does not export a function the installed headers declare (C++ and C).

The shared library exports only its public API (cmake/shmbus.map); every other symbol is local,
so that calls inside the library bind directly instead of through the PLT. That list is written by
hand, so this check recomputes what it must hold: clang parses the installed headers and names every
function they declare without defining it (out-of-line API functions, and the helpers that inline
code such as Subscriber::poll calls); each one the static archive defines must be in the shared
library's dynamic symbol table.

Usage: check_exports.py INCLUDE_DIR libshmbus.a libshmbus.so
"""
import json
import pathlib
import subprocess
import sys
import tempfile

FUNCTION_KINDS = {"FunctionDecl", "CXXMethodDecl", "CXXConstructorDecl", "CXXDestructorDecl",
                  "CXXConversionDecl"}
# Templates are instantiated by the user's code; friend declarations repeat a declaration.
SKIPPED_KINDS = {"FunctionTemplateDecl", "ClassTemplateDecl", "ClassTemplatePartialSpecializationDecl",
                 "FriendDecl"}


def declared_only(node, out):
    kind = node.get("kind")
    if kind in SKIPPED_KINDS or node.get("isImplicit"):
        return
    if kind in FUNCTION_KINDS:
        has_body = any(child.get("kind") == "CompoundStmt" for child in node.get("inner", []))
        defaulted = "explicitlyDefaulted" in node or node.get("explicitlyDeleted")
        if not has_body and not defaulted and not node.get("inline") and "mangledName" in node:
            out.add(node["mangledName"])
        return
    for child in node.get("inner", []):
        declared_only(child, out)


def functions_declared_in(include_dir):
    # The C++ headers and the C API's (*.h, whose extern "C" functions keep their plain names).
    headers = sorted(p.relative_to(include_dir) for pattern in ("*.hpp", "*.h")
                     for p in (include_dir / "shmbus").rglob(pattern))
    with tempfile.NamedTemporaryFile("w", suffix=".cpp") as all_headers:
        all_headers.write("".join(f"#include <{h}>\n" for h in headers))
        all_headers.flush()
        dump = subprocess.run(
            ["clang++", "-std=c++20", "-mcx16", f"-I{include_dir}", "-fsyntax-only",
             "-Xclang", "-ast-dump=json", "-Xclang", "-ast-dump-filter=shmbus", all_headers.name],
            check=True, capture_output=True, text=True).stdout
    declared = set()
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(dump) and dump[position].isspace():
            position += 1
        if position == len(dump):
            return declared
        node, position = decoder.raw_decode(dump, position)
        declared_only(node, declared)


def symbols(nm_arguments):
    listing = subprocess.run(["nm", "--defined-only", *nm_arguments], check=True,
                             capture_output=True, text=True).stdout
    return {line.split()[-1] for line in listing.splitlines()
            if len(line.split()) == 3 and line.split()[1] in "TWVBDR"}


def main():
    include_dir, archive, shared = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    declared = functions_declared_in(include_dir)
    in_archive = declared & symbols(["-g", archive])
    exported = symbols(["-D", shared])
    missing = sorted(in_archive - exported)
    # The headers declare dozens of out-of-line functions; far fewer means the parse went wrong.
    if len(in_archive) < 20:
        print(f"FAIL: found only {len(in_archive)} declared functions in {archive}", file=sys.stderr)
        return 1
    if missing:
        names = subprocess.run(["c++filt"], input="\n".join(missing), capture_output=True,
                               text=True, check=True).stdout
        print("FAIL: declared in the installed headers but not exported by "
              f"{shared} (add them to cmake/shmbus.map):\n{names}", file=sys.stderr)
        return 1
    print(f"{len(in_archive)} functions the headers declare are all exported; "
          f"{len(exported)} symbols exported in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

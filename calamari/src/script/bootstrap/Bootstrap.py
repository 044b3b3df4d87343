# Calamari for Rust: the Python bootstrap. Standard library only.
# Usage: python3 -u Bootstrap.py <variables file> <script> [parameters...]
# The variables file holds "name NUL value NUL ..." (UTF-8); it is 0600 in a 0700 per-step
# directory that Calamari removes when the step ends.

import base64
import binascii
import os
import runpy
import sys


def _load(path):
    with open(path, "rb") as f:
        parts = f.read().split(b"\0")
    result = {}
    for i in range(0, len(parts) - 1, 2):
        name = parts[i].decode("utf-8", "surrogateescape")
        if name:
            result[name] = parts[i + 1].decode("utf-8", "surrogateescape")
    return result


octopusvariables = _load(sys.argv[1])
_lower = None


def encode(value):
    return base64.b64encode(str(value).encode("utf-8", "surrogateescape")).decode("ascii")


def decode(value):
    return base64.b64decode(value).decode("utf-8", "surrogateescape")


def get_octopusvariable(key):
    global _lower
    if key in octopusvariables:
        return octopusvariables[key]
    if _lower is None:
        _lower = {}
        for name, value in octopusvariables.items():
            _lower.setdefault(name.lower(), value)
    return _lower.get(str(key).lower(), "")


def set_octopusvariable(name, value, sensitive=False):
    # As the reference's: the rest of the script sees the new value, and the message always
    # has both attributes (an empty value is `value=''`).
    octopusvariables[name] = value
    if _lower is not None:
        _lower[str(name).lower()] = value
    message = "##octopus[setVariable name='{}' value='{}'".format(
        encode(name), encode("" if value is None else value))
    if sensitive:
        message += " sensitive='{}'".format(encode("True"))
    print(message + "]", flush=True)


def createartifact(path, fileName=None):
    path = os.path.abspath(path)
    if fileName is None:
        fileName = os.path.basename(path)
    length = os.path.getsize(path) if os.path.isfile(path) else 0
    printverbose("Artifact {} will be collected from {} after this step completes".format(fileName, path))
    print("##octopus[createArtifact path='{}' name='{}' length='{}']".format(
        encode(path), encode(fileName), encode(length)), flush=True)


def updateprogress(progress, message=None):
    print("##octopus[progress percentage='{}' message='{}']".format(
        encode(progress), encode(message if message is not None else "")), flush=True)


def failstep(message=None):
    if message is not None:
        print("##octopus[resultMessage message='{}']".format(encode(message)), flush=True)
    sys.exit(-1)


def _printlevel(level, message):
    print("##octopus[stdout-{}]\n{}\n##octopus[stdout-default]".format(level, message), flush=True)


def printverbose(message):
    _printlevel("verbose", message)


def printhighlight(message):
    _printlevel("highlight", message)


def printwait(message):
    _printlevel("wait", message)


def printwarning(message):
    _printlevel("warning", message)


def _run():
    # The reference's bootstrap starts with the interpreter's version, at verbose level.
    printverbose(sys.version)
    script = os.path.abspath(sys.argv[2])
    sys.argv = [script] + sys.argv[3:]
    sys.path.insert(0, os.path.dirname(script))
    # The script runs with the bootstrap's globals, as the reference's does: the modules
    # imported above (sys, os, base64, binascii) are there without an import.
    modules = {"base64": base64, "binascii": binascii, "os": os, "sys": sys}
    helpers = {
        "octopusvariables": octopusvariables,
        "get_octopusvariable": get_octopusvariable,
        "set_octopusvariable": set_octopusvariable,
        "createartifact": createartifact,
        "updateprogress": updateprogress,
        "failstep": failstep,
        "printverbose": printverbose,
        "printhighlight": printhighlight,
        "printwait": printwait,
        "printwarning": printwarning,
        "encode": encode,
        "decode": decode,
    }
    # Modules imported by the script (`import MyModule`) see the helpers too.
    import builtins
    for name, value in helpers.items():
        setattr(builtins, name, value)
    runpy.run_path(script, init_globals={**modules, **helpers}, run_name="__main__")


_run()

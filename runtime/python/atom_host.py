"""atom-loader's Python skill host: one warm process per environment.

Started by the loader as `python3 -I -S -B atom_host.py [--site DIR]` with the protocol on
fds 3 (requests in) and 4 (responses out); fd 1 and 2 are the host's own log, and what a skill
prints while it runs is captured and returned with its result. Only builtin modules are imported
before the first request, so the host is ready in about the interpreter's own start time.

Frames: u32 little-endian length, then the body: u8 op, u32 request id, then fields, each a u32
length and UTF-8 bytes. See docs/LOADER.md ("Host protocol").

Each skill version is loaded as its own module under the unique name the loader gives it. The
skill's own top-level modules (`helpers`, even one called `json`) live in a private table and
are put into sys.modules only while that skill's code runs, so they never shadow a standard
module for anyone else and a reloaded skill imports fresh copies of them.
"""
import sys
import posix
import faulthandler
import _frozen_importlib as _bootstrap
import _frozen_importlib_external as _external

IN_FD = 3
OUT_FD = 4
# Outputs and logs are carried back in one frame; the loader caps frames at 6 MiB and the
# RPC payload at 4 MiB, so a larger output is refused here with its size (the loader answers
# RESOURCE_EXHAUSTED) instead of a frame the loader must kill the host for.
MAX_LOGS = 64 * 1024
MAX_OUTPUT = 4 * 1024 * 1024
# A failure's type, message and traceback are each cut at this many characters (an exception
# may carry megabytes of text).
MAX_FAILURE_TEXT = 64 * 1024

faulthandler.enable(file=sys.stderr, all_threads=False)
sys.dont_write_bytecode = True

_json = None
_resource = None


def json():
    """The json module, imported at the first execution (it costs ~10 ms of start time)."""
    global _json
    if _json is None:
        import json as module
        _json = module
    return _json


def read_exact(n):
    chunks = []
    while n > 0:
        chunk = posix.read(IN_FD, n)
        if not chunk:
            # The loader is gone (or closed our pipe): nothing left to serve.
            posix._exit(0)
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def write_all(data):
    view = memoryview(data)
    while view:
        written = posix.write(OUT_FD, view)
        view = view[written:]


def send(op, request_id, *fields):
    parts = [op, request_id.to_bytes(4, "little")]
    for field in fields:
        data = field if isinstance(field, bytes) else str(field).encode("utf-8", "replace")
        parts.append(len(data).to_bytes(4, "little"))
        parts.append(data)
    body = b"".join(parts)
    write_all(len(body).to_bytes(4, "little") + body)


def parse(body):
    op = body[0:1]
    request_id = int.from_bytes(body[1:5], "little")
    fields = []
    offset = 5
    while offset < len(body):
        size = int.from_bytes(body[offset:offset + 4], "little")
        offset += 4
        fields.append(body[offset:offset + size])
        offset += size
    return op, request_id, fields


class Skill:
    __slots__ = ("module", "function", "directory", "private", "local")

    def __init__(self, directory):
        self.module = None
        self.function = None
        self.directory = directory
        # Bare module name -> module object of this skill's own files.
        self.private = {}
        # Top-level names the folder itself provides (`helpers`, `json`): while the skill runs
        # they resolve to its files first, as for a script run from that folder.
        self.local = set()
        try:
            for entry in posix.listdir(directory):
                if entry.endswith(".py"):
                    self.local.add(entry[:-3])
                elif "." not in entry and _external._path_isfile(directory + "/" + entry + "/__init__.py"):
                    self.local.add(entry)
        except OSError:
            pass


class SkillFinder:
    """Finds a skill's own top-level modules (files and packages in its folder) while its code
    runs; everything else is left to the normal import system."""

    current = None

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        skill = cls.current
        if skill is None or path is not None or "." in name:
            return None
        base = skill.directory + "/" + name
        init = base + "/__init__.py"
        if _external._path_isfile(init):
            return _external.spec_from_file_location(name, init, submodule_search_locations=[base])
        source = base + ".py"
        if _external._path_isfile(source):
            return _external.spec_from_file_location(name, source)
        return None


sys.meta_path.insert(0, SkillFinder)


def inside(module, directory):
    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and origin.startswith(directory + "/")


class Running:
    """Puts a skill's private modules into sys.modules while its code runs, and takes back
    what its code imported from its own folder afterwards."""

    __slots__ = ("skill", "before", "shadowed")

    def __init__(self, skill):
        self.skill = skill

    def __enter__(self):
        skill = self.skill
        modules = sys.modules
        self.shadowed = {}
        for name, module in skill.private.items():
            if name in modules:
                self.shadowed[name] = modules[name]
            modules[name] = module
        for name in skill.local:
            if name not in skill.private and name in modules:
                # A global module of the same name (the host's json) steps aside while the
                # skill imports its own.
                self.shadowed[name] = modules.pop(name)
        self.before = set(modules)
        SkillFinder.current = skill
        return self

    def __exit__(self, *exc):
        SkillFinder.current = None
        skill = self.skill
        modules = sys.modules
        directory = skill.directory
        for name in set(modules) - self.before:
            module = modules[name]
            if inside(module, directory):
                skill.private[name] = module
                del modules[name]
        for name in skill.private:
            if modules.get(name) is skill.private[name]:
                del modules[name]
        for name, module in self.shadowed.items():
            modules[name] = module
        return False


class Capture:
    """Collects what the skill prints (sys.stdout / sys.stderr) during one call."""

    __slots__ = ("parts", "size")

    def __init__(self):
        self.parts = []
        self.size = 0

    def write(self, text):
        if not isinstance(text, str):
            text = str(text)
        if self.size < MAX_LOGS:
            self.parts.append(text[: MAX_LOGS - self.size])
            self.size += len(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    def text(self):
        joined = "".join(self.parts)
        return joined + ("\n[logs truncated]\n" if self.size > MAX_LOGS else "")


skills = {}


def failure_fields(error, kind):
    import traceback
    # The skill's frames only: not this host's, not the import machinery's.
    tb = error.__traceback__
    while tb is not None and (tb.tb_frame.f_code.co_filename == __file__ or tb.tb_frame.f_code.co_filename.startswith("<frozen")):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(error), error, tb))
    return clip(type(error).__name__), clip(str(error)), clip(text), kind


def clip(text):
    return text if len(text) <= MAX_FAILURE_TEXT else text[:MAX_FAILURE_TEXT] + "\n[truncated]"


def captured(request_id, kind, body):
    """Runs body() with everything it prints captured as its logs.

    Returns (True, result, logs). On an exception it sends the failure frame itself (a
    MemoryError as "memory", anything else as `kind`) and returns (False, None, None);
    SystemExit ends the host, which the loader reports as HOST_CRASHED.
    """
    capture = Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    try:
        result = body()
    except SystemExit as error:
        sys.stdout, sys.stderr = saved
        posix._exit(error.code if isinstance(error.code, int) else 1)
    except MemoryError as error:
        sys.stdout, sys.stderr = saved
        send(b"F", request_id, *failure_fields(error, "memory"), capture.text())
        return False, None, None
    except BaseException as error:
        sys.stdout, sys.stderr = saved
        send(b"F", request_id, *failure_fields(error, kind), capture.text())
        return False, None, None
    sys.stdout, sys.stderr = saved
    return True, result, capture.text()


def load(request_id, fields):
    module_name, directory, entry, function = (f.decode() for f in fields[:4])
    skill = Skill(directory)

    def body():
        # Directory listings cached by earlier imports may predate the new files.
        sys.path_importer_cache.clear()
        spec = _external.spec_from_file_location(module_name, entry)
        if spec is None:
            raise ImportError("cannot load " + entry)
        module = _bootstrap.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with Running(skill):
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        target = getattr(module, function, None)
        if not callable(target):
            sys.modules.pop(module_name, None)
            raise AttributeError(entry.rsplit("/", 1)[-1] + " defines no function " + function + "(inputs)")
        skill.module = module
        skill.function = target

    ok, _, logs = captured(request_id, "load", body)
    if ok:
        skills[module_name] = skill
        send(b"O", request_id, logs)


def execute(request_id, fields):
    module_name = fields[0].decode()
    skill = skills.get(module_name)
    if skill is None:
        send(b"F", request_id, "NotLoaded", module_name + " is not loaded in this host", "", "missing", "")
        return
    try:
        inputs = json().loads(fields[1]) if fields[1] else {}
    except ValueError as error:
        send(b"F", request_id, "ValueError", "inputs_json is not valid JSON: " + str(error), "", "input", "")
        return
    if not isinstance(inputs, dict):
        send(b"F", request_id, "TypeError", "inputs_json must be a JSON object, not " + type(inputs).__name__, "", "input", "")
        return
    cpu_seconds = int(fields[2]) if len(fields) > 2 and fields[2] else 0
    if cpu_seconds:
        global _resource
        if _resource is None:
            import resource
            _resource = resource
        # This call's CPU time budget: the kernel sends SIGXCPU past it (the loader answers
        # RESOURCE_EXHAUSTED and replaces the host).
        usage = _resource.getrusage(_resource.RUSAGE_SELF)
        soft = int(usage.ru_utime + usage.ru_stime) + cpu_seconds
        _resource.setrlimit(_resource.RLIMIT_CPU, (soft, _resource.RLIM_INFINITY))

    def body():
        with Running(skill):
            result = skill.function(inputs)
        if not isinstance(result, dict):
            raise TypeError(skill.function.__name__ + " returned " + type(result).__name__ + "; a skill returns a dict")
        try:
            # allow_nan=False: NaN and Infinity are not JSON, and would reach callers as such.
            return json().dumps(result, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TypeError("the output is not JSON: " + str(error)) from None

    ok, outputs, logs = captured(request_id, "skill", body)
    if ok:
        size = len(outputs.encode("utf-8", "replace"))
        if size > MAX_OUTPUT:
            send(b"F", request_id, "OutputTooLarge",
                 "the output is %d bytes of JSON; at most %d" % (size, MAX_OUTPUT), "", "output-size", logs)
            return
        send(b"O", request_id, outputs, logs)


def unload(fields):
    for field in fields:
        name = field.decode()
        skills.pop(name, None)
        sys.modules.pop(name, None)


def main():
    global _resource
    arguments = sys.argv[1:]
    while arguments:
        flag = arguments.pop(0)
        if flag == "--site" and arguments:
            import site
            site.addsitedir(arguments.pop(0))
        elif flag == "--memory" and arguments:
            import resource
            limit = int(arguments.pop(0))
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            _resource = resource

    send(b"R", 0, str(posix.getpid()), sys.version.split()[0])
    while True:
        size = int.from_bytes(read_exact(4), "little")
        op, request_id, fields = parse(read_exact(size))
        if op == b"X":
            execute(request_id, fields)
        elif op == b"L":
            load(request_id, fields)
        elif op == b"U":
            unload(fields)
        elif op == b"P":
            send(b"O", request_id)
        else:
            send(b"F", request_id, "ProtocolError", "unknown op " + repr(op), "", "protocol", "")


main()

"""The functions of ember's Python function image: four FunctionBench-style handlers behind one
HTTP server on TCP 8080 (or argv[1]). GET /hello (also /), /json, /resize and /aes each answer a
JSON object holding this VM's invocation counter (1 for the first request served after the
warm-up), the guest kernel's boot_id, the function's name and its result. The results are
deterministic, so a restored clone's answer can be compared with a booted VM's.

The kernel's command line may choose the functions: functions=resize,aes serves those (and hello)
and imports only what they need; functions=hello serves hello alone, a warm runtime. POST
/functions/NAME loads one more (imports it, calls it once) into a running server: restored from a
snapshot of the runtime, two clones that each load a function hold two functions on one runtime,
as a platform builds them. Without functions= all four are served.

Every import is done and every function called once before the server listens: a snapshot taken
after the readiness line holds a warm function, as a FaaS host would take it. Requests are
bounded (5 s per socket operation, http.server's own line limits); one at a time."""

import hashlib
import io
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

invocations = 0


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def chosen_functions():
    try:
        with open("/proc/cmdline") as f:
            words = f.read().split()
    except OSError:
        words = []
    for word in words:
        if word.startswith("functions="):
            return word[len("functions="):].split(",")
    return ["json", "resize", "aes"]


def make_hello():
    def hello():
        return {"message": "hello"}

    return hello


def make_json():
    # About 1 MB once serialised: records of the shape a web API returns.
    document = [
        {
            "id": i,
            "name": f"item-{i:05d}",
            "price": round(i * 1.25 % 997, 2),
            "tags": [f"t{(i * 7 + k) % 50}" for k in range(4)],
            "owner": {"user": f"u{i % 313}", "active": i % 3 != 0},
        }
        for i in range(7600)
    ]

    def json_roundtrip():
        text = json.dumps(document, sort_keys=True)
        back = json.loads(text)
        return {"bytes": len(text), "records": len(back), "sha256": hashlib.sha256(text.encode()).hexdigest()}

    return json_roundtrip


def make_resize():
    from PIL import Image

    # An 800x600 JPEG made in memory, standing in for an uploaded photo.
    size = (800, 600)
    red = Image.effect_mandelbrot(size, (-2.2, -1.2, 1.0, 1.2), 64)
    green = Image.linear_gradient("L").resize(size)
    blue = Image.radial_gradient("L").resize(size)
    out = io.BytesIO()
    Image.merge("RGB", (red, green, blue)).save(out, format="JPEG", quality=90)
    photo = out.getvalue()

    def resize():
        with Image.open(io.BytesIO(photo)) as image:
            small = image.resize((400, 300), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=85)
        data = out.getvalue()
        return {"width": small.width, "height": small.height, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    return resize


def make_aes():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    # A fixed key and counter block keep the ciphertext deterministic, for comparing answers: this
    # measures the work of encryption, it protects nothing.
    key = bytes(range(32))
    nonce = bytes(16)
    plaintext = bytes(range(256)) * 4096  # 1 MiB

    def aes():
        encryptor = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
        data = encryptor.update(plaintext) + encryptor.finalize()
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    return aes


MAKERS = {"json": make_json, "resize": make_resize, "aes": make_aes}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5
    functions = {}

    def do_GET(self):
        global invocations
        function = self.functions.get(self.path)
        if function is None:
            self.answer(404, {"error": f"no function at {self.path}", "functions": sorted(self.functions)})
            return
        invocations += 1
        result = function()
        self.answer(200, {"invocation": invocations, "boot_id": boot_id(), "function": function.__name__, "result": result})

    def do_POST(self):
        name = self.path.removeprefix("/functions/")
        if name == self.path or name not in MAKERS:
            self.answer(404, {"error": f"no function to load at {self.path}", "loadable": sorted(MAKERS)})
            return
        if "/" + name not in self.functions:
            function = MAKERS[name]()
            function()
            self.functions["/" + name] = function
        self.answer(200, {"loaded": name, "functions": sorted(self.functions)})

    def answer(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    hello = make_hello()
    functions = {"/": hello, "/hello": hello}
    names = [name for name in chosen_functions() if name in MAKERS]
    for name in names:
        functions["/" + name] = MAKERS[name]()
    for function in set(functions.values()):
        function()
    Handler.functions = functions
    server = HTTPServer(("0.0.0.0", port), Handler)
    print(f"fn-server: python functions {' '.join(names) or 'hello'} ready on port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

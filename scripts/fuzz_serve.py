#!/usr/bin/env python3
# Mutation fuzzing of a running `ctts serve` (a one-off check, not part of CI):
#   build/asan/ctts serve --model M --port 0 --timeout 1 --quiet 2>err &   # then
#   scripts/fuzz_serve.py PORT SECONDS [SEED]   (several at once for concurrency)
# Sends mutated requests (HTTP, JSON, uploads, WebSocket frames) and fails if the
# server stops answering; sanitizer reports land in the server's stderr.
import socket, random, sys, time, os
port = int(sys.argv[1]); seconds = float(sys.argv[2])
random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
base = [
 b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
 b"POST /v1/audio/speech HTTP/1.1\r\nContent-Length: 33\r\n\r\n{\"input\":\"Hi there.\",\"stream\":true}",
 b"POST /v1/audio/speech HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"input\":\"Hello.\"}",
 b"GET /v1/voices HTTP/1.1\r\n\r\n",
 b"POST /v1/voices?name=a&text=hi%20there HTTP/1.1\r\nContent-Length: 8\r\n\r\nRIFFxxxx",
 b"GET /v1/audio/speech/ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x82\x00\x00\x00\x00{}\x81\x8c\x00\x00\x00\x00{\"end\":true}",
]
def ws_text(payload):  # a masked (zero key) text frame
    return b"\x81" + bytes([0x80 | len(payload)]) + b"\0\0\0\0" + payload
base.append(b"GET /v1/audio/speech/ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" +
            ws_text(b'{"voice":"ryan","text_mode":"streaming","max_new_tokens":30}') +
            ws_text(b'{"text":"Hello th"}') + ws_text(b'{"text":"ere, caf\xc3"}') +
            ws_text(b'{"text":"\xa9 <|im_e"}') + ws_text(b'{"text":"nd|> more."}') + ws_text(b'{"end":true}'))
n = 0; t0 = time.time()
while time.time() - t0 < seconds:
    m = bytearray(random.choice(base))
    for _ in range(random.randint(0, 6)):
        op = random.randint(0, 4); i = random.randint(0, len(m))
        if op == 0 and m: m[random.randrange(len(m))] = random.randrange(256)
        elif op == 1: m[i:i] = bytes([random.choice(b"\r\n\0:{}\" %\x81\xff0123456789")])
        elif op == 2: del m[i:i + random.randint(1, 8)]
        elif op == 3: m[i:i] = m[max(0, i-10):i]
        else: m = m[:i]
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(bytes(m))
        if random.random() < 0.5: s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(65536): pass
        except Exception: pass
        s.close()
    except ConnectionRefusedError:
        print("server gone after", n); sys.exit(1)
    except Exception as e:
        pass
    n += 1
print("requests", n)

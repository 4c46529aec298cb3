#!/usr/bin/env python3
#
# The smallest Python clients that do what the SDK's time-to-ready examples do, so
# `cargo xtask bench peers` can put the SDK next to them against the same bot in one run:
#
#   webrtc    aiortc: POST /start, an audio transceiver and the "chat" data channel, the offer
#             (candidates inline: aiortc gathers while setting the local description) POSTed
#             to /sessions/{id}/api/offer, client-ready on open, wait for bot-ready.
#   websocket websockets: POST /start, open wsUrl, client-ready as a protobuf MessageFrame,
#             wait for bot-ready.
#
# Then, on the ready session, `--requests` client-message requests (`ping`) one after
# another, each timed to its server-response. Prints one line per run and a last line
# `RESULT {"ready_ms": <median>, "rtt_ms": <median>, "runs": N}`.
#
#   target/peer-venv/bin/python tests/peer_bot/minimal_clients.py webrtc http://localhost:8765/start 20 --loopback
#
# No audio flows: like the Rust examples, this measures signalling and handshakes only.

"""Minimal aiortc and websockets RTVI clients, for the side-by-side bench."""

import argparse
import asyncio
import json
import statistics
import time
import uuid

import aiohttp


def rtvi(kind: str, data) -> dict:
    return {"id": uuid.uuid4().hex[:8], "label": "rtvi-ai", "type": kind, "data": data}


def client_ready() -> dict:
    return rtvi("client-ready", {"version": "2.2.0", "about": {"library": "minimal-python"}})


class Session:
    """A ready RTVI session over some transport: send JSON, await messages."""

    def __init__(self):
        self.inbox: asyncio.Queue = asyncio.Queue()

    def received(self, text: str):
        try:
            self.inbox.put_nowait(json.loads(text))
        except ValueError:
            pass

    async def wait_for(self, predicate, timeout: float = 10.0) -> dict:
        async def loop():
            while True:
                message = await self.inbox.get()
                if isinstance(message, dict) and predicate(message):
                    return message

        return await asyncio.wait_for(loop(), timeout)

    async def requests(self, n: int) -> list[float]:
        times = []
        for i in range(n):
            request = rtvi("client-message", {"t": "ping", "d": {"n": i}})
            started = time.perf_counter()
            await self.send(request)
            await self.wait_for(
                lambda m: m.get("type") == "server-response" and m.get("id") == request["id"]
            )
            times.append((time.perf_counter() - started) * 1000)
        return times


async def start(http: aiohttp.ClientSession, url: str, transport: str) -> dict:
    async with http.post(url, json={"transport": transport}) as response:
        response.raise_for_status()
        return await response.json()


async def webrtc_run(http, start_url: str, requests: int) -> tuple[float, list[float]]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    session = Session()
    started = time.perf_counter()
    answer = await start(http, start_url, "webrtc")
    offer_url = start_url.replace("/start", f"/sessions/{answer['sessionId']}/api/offer")
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    channel = pc.createDataChannel("chat", ordered=True)
    session.send = lambda message: _dc_send(channel, message)

    @channel.on("open")
    def on_open():
        channel.send(json.dumps(client_ready()))

    @channel.on("message")
    def on_message(message):
        if isinstance(message, str):
            session.received(message)

    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer"}
    async with http.post(offer_url, json=body) as response:
        response.raise_for_status()
        reply = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    await session.wait_for(lambda m: m.get("type") == "bot-ready")
    ready_ms = (time.perf_counter() - started) * 1000
    rtts = await session.requests(requests)
    await pc.close()
    return ready_ms, rtts


async def _dc_send(channel, message: dict):
    channel.send(json.dumps(message))


async def websocket_run(http, start_url: str, requests: int) -> tuple[float, list[float]]:
    import websockets
    from pipecat.frames.protobufs import frames_pb2

    def frame(message: dict) -> bytes:
        f = frames_pb2.Frame()
        f.message.data = json.dumps(message)
        return f.SerializeToString()

    session = Session()
    started = time.perf_counter()
    answer = await start(http, start_url, "websocket")
    url = answer.get("wsUrl") or answer["ws_url"]
    if answer.get("token"):
        url += ("&" if "?" in url else "?") + "token=" + answer["token"]
    async with websockets.connect(url, max_size=None) as ws:

        async def send(message: dict):
            await ws.send(frame(message))

        session.send = send

        async def read():
            async for data in ws:
                if isinstance(data, bytes):
                    f = frames_pb2.Frame()
                    f.ParseFromString(data)
                    if f.WhichOneof("frame") == "message":
                        session.received(f.message.data)

        reader = asyncio.create_task(read())
        await send(client_ready())
        await session.wait_for(lambda m: m.get("type") == "bot-ready")
        ready_ms = (time.perf_counter() - started) * 1000
        rtts = await session.requests(requests)
        reader.cancel()
    return ready_ms, rtts


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("transport", choices=["webrtc", "websocket"])
    parser.add_argument("start_url")
    parser.add_argument("runs", type=int, nargs="?", default=20)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--loopback", action="store_true", help="gather 127.0.0.1 only")
    args = parser.parse_args()
    if args.loopback:
        import aioice.ice

        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    run = webrtc_run if args.transport == "webrtc" else websocket_run
    ready, rtts = [], []
    async with aiohttp.ClientSession() as http:
        for i in range(1, args.runs + 1):
            ready_ms, times = await run(http, args.start_url, args.requests)
            ready.append(ready_ms)
            rtts.extend(times)
            print(f"run {i:2}: {ready_ms:.1f} ms", flush=True)
            # Let the bot finish the previous session before the next one starts.
            await asyncio.sleep(0.3)
    result = {
        "ready_ms": round(statistics.median(ready), 2),
        "rtt_ms": round(statistics.median(rtts), 3) if rtts else None,
        "runs": args.runs,
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

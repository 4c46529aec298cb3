#!/usr/bin/env python3
# Copyright (c) The pipecat-rs developers. SPDX-License-Identifier: BSD-2-Clause
#
# pipecat-daily bridge: drives daily-python (pip install daily-python) for the Rust
# `SidecarBackend`. The Rust side starts it as `python -u daily_bridge.py` and talks to it in
# JSON lines:
#
#   Rust -> bridge, on stdin:   {"id": 1, "cmd": "ping"}
#                               {"id": 2, "cmd": "join", "url": ..., "token": ..., ...}
#                               {"cmd": "mic", "pcm": "<base64 PCM16 LE>"}        (no answer)
#   bridge -> Rust, on stdout:  {"type": "hello", "protocol": 1, ...}                (first line)
#                               {"type": "response", "id": 1, "ok": true, "result": {...}}
#                               {"type": "response", "id": 2, "ok": false, "error": "..."}
#                               {"type": "event", "event": {"action": "participant-joined", ...}}
#                               {"type": "speaker", "pcm": "<base64 PCM16 LE>"}
#                               {"type": "fatal", "error": "..."}                  (then exit)
#
# Events are rebuilt in daily-core's JSON shape ({"action": ...}) from daily-python's callbacks.
# daily-core writes its own log lines to file descriptor 1, so before anything else the
# protocol stream is moved to a duplicate of stdout and fd 1 is pointed at stderr: the Rust
# side reads protocol lines only, and captures stderr for diagnostics.
#
# The bridge exits when stdin closes (the Rust process went away), on "shutdown", or on
# SIGTERM.

import base64
import json
import os
import signal
import sys
import threading

PROTOCOL = 1
BRIDGE_VERSION = "1.0.0"

# --- The protocol stream: a private duplicate of stdout; fd 1 now goes to stderr. ---------
_proto_fd = os.dup(1)
os.dup2(2, 1)
_proto = os.fdopen(_proto_fd, "wb", buffering=0)
sys.stdout = sys.stderr
_write_lock = threading.Lock()


def send(message):
    line = (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    with _write_lock:
        try:
            _proto.write(line)
        except (BrokenPipeError, OSError):
            os._exit(0)


def log(text):
    sys.stderr.write("daily_bridge: %s\n" % text)
    sys.stderr.flush()


try:
    from daily import CallClient, Daily, EventHandler
except Exception as error:  # ImportError, or a broken native module
    send({"type": "fatal", "error": "cannot import daily-python (pip install daily-python): %s" % error})
    sys.exit(3)


def daily_python_version():
    try:
        from importlib import metadata

        return metadata.version("daily-python")
    except Exception:
        return "unknown"


# Echoes of request failures: daily-python reports them through on_error too, but the Rust
# side already gets them as the request's answer, and they are not call errors.
_REQUEST_ECHO = "Error handling "


class Handler(EventHandler):
    def on_participant_joined(self, participant):
        send({"type": "event", "event": {"action": "participant-joined", "participant": participant}})

    def on_participant_updated(self, participant):
        send({"type": "event", "event": {"action": "participant-updated", "participant": participant}})

    def on_participant_left(self, participant, reason):
        send({"type": "event", "event": {"action": "participant-left", "participant": participant, "reason": reason}})

    def on_app_message(self, message, sender):
        send({"type": "event", "event": {"action": "app-message", "msgData": message, "from": sender}})

    def on_call_state_updated(self, state):
        send({"type": "event", "event": {"action": "call-state-updated", "state": state}})

    def on_error(self, message):
        if isinstance(message, str) and message.startswith(_REQUEST_ECHO):
            log("request error: %s" % message)
            return
        send({"type": "event", "event": {"action": "error", "message": message}})


class Bridge:
    def __init__(self):
        self.client = None
        self.mic = None
        self.speaker = None
        self.speaker_thread = None
        self.running = False
        self.joined = False

    # --- answers -----------------------------------------------------------------------
    @staticmethod
    def ok(request_id, result=None):
        send({"type": "response", "id": request_id, "ok": True, "result": result if result is not None else {}})

    @staticmethod
    def fail(request_id, error):
        send({"type": "response", "id": request_id, "ok": False, "error": str(error)})

    # --- commands ----------------------------------------------------------------------
    def ping(self, request_id, _command):
        self.ok(request_id, {"pong": True, "joined": self.joined})

    def join(self, request_id, command):
        if self.client is not None:
            self.fail(request_id, "already joined: one call per bridge")
            return
        mic = command.get("mic") or {}
        speaker = command.get("speaker") or {}
        mic_name = command.get("mic_device") or "pipecat-mic"
        speaker_name = command.get("speaker_device") or "pipecat-speaker"
        self.mic = Daily.create_microphone_device(
            mic_name, sample_rate=int(mic.get("sample_rate", 16000)), channels=int(mic.get("channels", 1)), non_blocking=True
        )
        self.speaker = Daily.create_speaker_device(
            speaker_name, sample_rate=int(speaker.get("sample_rate", 16000)), channels=int(speaker.get("channels", 1))
        )
        Daily.select_speaker_device(speaker_name)
        self.client = CallClient(event_handler=Handler())
        if command.get("user_name"):
            self.client.set_user_name(command["user_name"])
        profiles = command.get("subscription_profiles")
        if profiles:
            self.client.update_subscription_profiles(profiles)
        frames = max(1, int(speaker.get("sample_rate", 16000)) // 50)  # 20 ms

        def joined(data, error):
            if error:
                self.fail(request_id, error)
                return
            self.joined = True
            self.start_speaker(frames)
            try:
                participants = self.client.participants()
            except Exception as e:  # keep the join even if the snapshot fails
                log("participants(): %s" % e)
                participants = None
            self.ok(request_id, {"join": data, "participants": participants})

        self.client.join(command["url"], command.get("token"), command.get("client_settings") or {}, completion=joined)

    def start_speaker(self, frames):
        self.running = True

        def pump():
            while self.running:
                try:
                    pcm = self.speaker.read_frames(frames)
                except Exception as e:
                    log("speaker read failed: %s" % e)
                    return
                if pcm and self.running:
                    send({"type": "speaker", "pcm": base64.b64encode(pcm).decode("ascii")})

        self.speaker_thread = threading.Thread(target=pump, name="speaker", daemon=True)
        self.speaker_thread.start()

    def leave(self, request_id, _command):
        self.running = False
        if self.client is None:
            self.ok(request_id)
            return

        def left(error):
            self.joined = False
            if error:
                self.fail(request_id, error)
            else:
                self.ok(request_id)

        self.client.leave(completion=left)

    def send_app_message(self, request_id, command):
        if self.client is None:
            self.fail(request_id, "not joined")
            return

        def sent(error):
            if error:
                self.fail(request_id, error)
            else:
                self.ok(request_id)

        self.client.send_app_message(command.get("message"), command.get("participant"), completion=sent)

    def write_mic(self, command):
        if self.mic is None or not self.joined:
            return
        try:
            self.mic.write_frames(base64.b64decode(command.get("pcm", "")))
        except Exception as e:
            log("mic write failed: %s" % e)

    def shutdown(self):
        self.running = False
        if self.client is not None:
            done = threading.Event()
            try:
                self.client.leave(completion=lambda _error: done.set())
                done.wait(5)
            except Exception as e:
                log("leave on shutdown: %s" % e)
            try:
                self.client.release()
            except Exception as e:
                log("release: %s" % e)
            self.client = None


def main():
    Daily.init()
    bridge = Bridge()

    def on_term(_signum, _frame):
        bridge.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    send(
        {
            "type": "hello",
            "protocol": PROTOCOL,
            "bridge_version": BRIDGE_VERSION,
            "daily_python": daily_python_version(),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "pid": os.getpid(),
        }
    )
    commands = {"ping": bridge.ping, "join": bridge.join, "leave": bridge.leave, "send_app_message": bridge.send_app_message}
    for raw in sys.stdin.buffer:
        try:
            command = json.loads(raw)
        except ValueError as e:
            log("ignoring a line that is not JSON: %s" % e)
            continue
        if not isinstance(command, dict):
            continue
        name = command.get("cmd")
        request_id = command.get("id")
        if name == "mic":
            bridge.write_mic(command)
        elif name == "shutdown":
            bridge.shutdown()
            if request_id is not None:
                bridge.ok(request_id)
            break
        elif name in commands:
            try:
                commands[name](request_id, command)
            except Exception as e:
                bridge.fail(request_id, "%s failed: %s" % (name, e))
        else:
            bridge.fail(request_id, "unknown command %r" % (name,))
    bridge.shutdown()
    _proto.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

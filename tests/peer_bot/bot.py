#!/usr/bin/env python3
#
# The real pipecat-ai peer bot of the Rust SDK's interop tests.
#
# A Pipecat bot (pipecat-ai 1.14.0, 1.12.0 or 1.3.0) with no AI services: it echoes the user's
# audio back and answers scripted RTVI client messages, so a client can exercise every part of
# the protocol (see README.md beside this file, and TRACES.md for what each scenario puts on the
# wire).
#
#   python bot.py --host localhost --port <free port> [-t webrtc|websocket] [--loopback-ice]
#                 [--no-echo]
#
# Every other flag is handed to pipecat's development runner (`pipecat.runner.run.main`), which
# serves POST /start, GET /status, /api/offer, /sessions/{id}/api/offer and WS /ws-client.
# All logging goes to stderr; a harness knows the bot is listening when GET /status answers 200.

"""Scripted pipecat-ai peer bot (no AI services) for the Rust SDK's interop tests."""

# pipecat is imported after the NLTK stub is in place (see the compatibility section).
# ruff: noqa: E402

import argparse
import asyncio
import math
import os
import signal
import struct
import sys
import tempfile
import threading
import time
from typing import Any

from loguru import logger

# ---- Compatibility with older pipecat-ai releases -------------------------------------------
# The bot runs on pipecat-ai 1.14.0 (the default), 1.12.0 and 1.3.0 (see README.md). Everything
# that differs between them is handled here, before and while pipecat is imported.


def ensure_nltk_punkt_stub():
    """Give NLTK an (empty) `punkt_tab` model if none is installed.

    pipecat-ai up to about 1.11 imports `pipecat.utils.string`, which calls
    `nltk.download("punkt_tab")` when the data is missing: offline that fails (or hangs on the
    network). The bot never needs real sentence splitting (its texts are one sentence), so four
    empty files are enough. The stub goes to a directory of the system's temp dir and is only
    appended to NLTK's search path, so real data, where installed, still wins.
    """
    try:
        import nltk
    except ImportError:
        return  # Newer releases do not depend on NLTK.
    try:
        nltk.data.find("tokenizers/punkt_tab")
        return
    except LookupError:
        pass
    root = os.path.join(tempfile.gettempdir(), "pipecat-peer-bot-nltk")
    english = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(english, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        path = os.path.join(english, name)
        if not os.path.exists(path):
            open(path, "w").close()
    nltk.data.path.append(root)


ensure_nltk_punkt_stub()

import pipecat  # noqa: E402
from pipecat.audio.utils import create_stream_resampler, is_silence
from pipecat.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    Frame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterimTranscriptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    MetricsFrame,
    SpeechOutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi import (
    RTVIClientMessageFrame,
    RTVIFunctionCallReportLevel,
    RTVIObserverParams,
    RTVIServerMessageFrame,
    RTVIServerResponseFrame,
)
from pipecat.runner.types import RunnerArguments, SmallWebRTCRunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

try:
    # 1.4 and later.
    from pipecat.frames.frames import EndWorkerFrame
except ImportError:
    # 1.3: the same graceful end was still called EndTaskFrame.
    from pipecat.frames.frames import EndTaskFrame as EndWorkerFrame

try:
    # 1.13 and later: what `send-file` (RTVI 2.2.0) produces for a non-image file.
    from pipecat.frames.frames import UserFileRawFrame
except ImportError:
    # Older releases answer `send-file` with "Unsupported type" and never produce one.
    UserFileRawFrame = None

# The pipecat-ai release running this bot, as a tuple of ints ((1, 14, 0)).
PIPECAT_VERSION = tuple(int(p) for p in pipecat.version().split(".")[:3] if p.isdigit())


def aggregated_text_frame(text: str) -> AggregatedTextFrame:
    """A sentence of LLM text. 1.13 renamed the kind field `aggregated_by` to `text_type`
    (the old keyword still works there, with a deprecation warning; 1.12 and older only know
    `aggregated_by`)."""
    if PIPECAT_VERSION >= (1, 13):
        return AggregatedTextFrame(text=text, text_type="sentence")
    return AggregatedTextFrame(text=text, aggregated_by="sentence")


# ---- End of the compatibility section -------------------------------------------------------

# Pipeline audio rates: what the JS clients use, and pipecat's defaults.
AUDIO_IN_SAMPLE_RATE = 16000
AUDIO_OUT_SAMPLE_RATE = 24000

# The user id reported on the transcriptions the `transcript` message fakes.
PEER_USER_ID = "peer-user"

# The echo stays open this long after the last non-silent user audio, so speech comes back
# whole (pauses included) while a silent microphone produces no bot audio at all.
ECHO_HANGOVER_SECS = 0.5

# A `tone` longer than this is cut, so a client bug cannot make the bot talk for minutes.
MAX_TONE_MS = 10_000

# Tone audio is pushed in pieces of this length: the output transport's own chunk (4 x 10 ms).
TONE_CHUNK_MS = 40

# Tone amplitude, as a fraction of full scale (0.3 gives an RMS of about 7000 in PCM16).
TONE_AMPLITUDE = 0.3

# `drop-pc` answers first, then waits this long so the answer leaves before the link dies.
DROP_PC_DELAY_SECS = 0.2

# On SIGTERM the runner waits this long for running sessions before cancelling them.
SHUTDOWN_GRACE_SECS = 3.0

# If the process has not exited this long after SIGTERM, it exits hard.
HARD_EXIT_SECS = 10.0

# Our own command-line options, parsed (and stripped from argv) before the runner sees it.
OPTIONS = argparse.Namespace(echo=True, loopback_ice=False)


def sine_pcm16(ms: int, hz: float, sample_rate: int) -> bytes:
    """`ms` milliseconds of a mono sine tone, as PCM16 little-endian."""
    count = sample_rate * ms // 1000
    scale = TONE_AMPLITUDE * 32767
    step = 2 * math.pi * hz / sample_rate
    return struct.pack(f"<{count}h", *(int(scale * math.sin(step * i)) for i in range(count)))


def last_user_text(messages: list[Any]) -> str | None:
    """The text of the last user message of an LLM context update (OpenAI format)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p["text"] for p in content if isinstance(p, dict) and "text" in p)
    return None


class PeerProcessor(FrameProcessor):
    """Echoes the user's audio and answers scripted RTVI client messages.

    Client messages are dispatched on their `t` (see README.md for the table). Replies are
    `RTVIServerResponseFrame`s, which the RTVI observer turns into `server-response` (with
    `data`) or `error-response` (with `error`) carrying the client message's id.
    """

    def __init__(self, *, echo: bool, webrtc_connection: Any = None, **kwargs):
        """Create the processor.

        Args:
            echo: Whether user audio is echoed back as bot speech.
            webrtc_connection: The session's `SmallWebRTCConnection`, or None on WebSocket.
            **kwargs: Passed to `FrameProcessor`.
        """
        super().__init__(**kwargs)
        self._echo = echo
        self._connection = webrtc_connection
        self._resampler = create_stream_resampler()
        self._out_sample_rate = AUDIO_OUT_SAMPLE_RATE
        self._fn_calls = 0
        # Until when (monotonic time) user audio is echoed: see ECHO_HANGOVER_SECS.
        self._echo_open_until = 0.0
        # Tasks the processor started and must not be garbage-collected while running.
        self._tasks: set[asyncio.Task] = set()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Handle one frame; anything the bot does not script passes through."""
        await super().process_frame(frame, direction)

        if isinstance(frame, StartFrame):
            self._out_sample_rate = frame.audio_out_sample_rate
            await self.push_frame(frame, direction)
        elif isinstance(frame, InputAudioRawFrame):
            # User audio stops here: it is echoed (or dropped), never forwarded.
            if self._echo:
                await self._echo_audio(frame)
        elif isinstance(frame, RTVIClientMessageFrame):
            await self._handle_client_message(frame)
        elif isinstance(frame, InputDTMFFrame):
            # What the client's `dtmf` becomes (one frame per key): reported back, so a test
            # sees what arrived. It stops here.
            await self.push_frame(RTVIServerMessageFrame(data={"dtmf": str(frame.button.value)}))
        elif UserFileRawFrame is not None and isinstance(frame, UserFileRawFrame):
            # What `send-file` becomes: reported back the same way; it stops here.
            await self.push_frame(
                RTVIServerMessageFrame(
                    data={
                        "file": {
                            "text": frame.text,
                            "format": frame.format,
                            "name": frame.filename,
                            "type": frame.type,
                            "file": frame.file,
                        }
                    }
                )
            )
        elif isinstance(frame, LLMMessagesAppendFrame):
            # What `send-text` produces. Answer like an LLM would, unless told not to run it.
            text = last_user_text(frame.messages)
            if frame.run_llm is not False and text is not None:
                await self._llm_reply(f"echo: {text}")
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _echo_audio(self, frame: InputAudioRawFrame):
        # A client microphone streams silence all the time. Echoing it would keep the output
        # transport writing audio forever, unlike a real bot, which only writes while it
        # speaks. It also matters for restart_pc: pipecat 1.14 stalls an audio write in flight
        # on a replaced peer connection for 10 s and then drops all bot audio for good (see
        # TRACES.md). So the echo opens on sound and closes after a pause.
        now = time.monotonic()
        if not is_silence(frame.audio):
            self._echo_open_until = now + ECHO_HANGOVER_SECS
        if now >= self._echo_open_until:
            return
        audio = frame.audio
        if frame.num_channels == 2:
            # Keep the left channel: the pipeline output is mono.
            samples = struct.unpack(f"<{len(audio) // 2}h", audio)
            audio = struct.pack(f"<{len(samples) // 2}h", *samples[::2])
        audio = await self._resampler.resample(audio, frame.sample_rate, self._out_sample_rate)
        if audio:
            # Speech frames (not plain output audio) make the output transport report
            # bot-started-speaking / bot-stopped-speaking.
            await self.push_frame(
                SpeechOutputAudioRawFrame(
                    audio=audio, sample_rate=self._out_sample_rate, num_channels=1
                )
            )

    async def _llm_reply(self, text: str):
        """Push what an LLM service would for a one-sentence reply the TTS must not speak."""
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(text=text))
        sentence = aggregated_text_frame(text)
        sentence.skip_tts = True
        await self.push_frame(sentence)
        await self.push_frame(LLMFullResponseEndFrame())

    async def _respond(self, msg: RTVIClientMessageFrame, data: Any = None):
        await self.push_frame(RTVIServerResponseFrame(client_msg=msg, data=data))

    async def _respond_error(self, msg: RTVIClientMessageFrame, error: str):
        await self.push_frame(RTVIServerResponseFrame(client_msg=msg, error=error))

    async def _handle_client_message(self, msg: RTVIClientMessageFrame):
        d = msg.data if msg.data is not None else {}
        args = d if isinstance(d, dict) else {}
        logger.debug(f"{self}: client-message t={msg.type!r} d={msg.data!r}")
        match msg.type:
            case "ping":
                await self._respond(msg, {"pong": True, "echo": msg.data})
            case "tone":
                ms = min(int(args.get("ms", 500)), MAX_TONE_MS)
                hz = float(args.get("hz", 440))
                samples = await self._play_tone(ms, hz)
                await self._respond(msg, {"samples": samples})
            case "server-msg":
                await self.push_frame(RTVIServerMessageFrame(data=msg.data))
                await self._respond(msg, {"sent": True})
            case "transcript":
                text = str(args.get("text", "hello there bot"))
                await self._fake_transcription(text)
                await self._respond(msg, {"text": text})
            case "bot-text":
                text = str(args.get("text", "Hello from the bot."))
                await self._llm_reply(text)
                await self._respond(msg, {"text": text})
            case "fn-call":
                await self._start_function_call(msg, args)
            case "fail":
                await self._respond_error(msg, str(args.get("error", "nope")))
            case "error":
                await self._respond(msg, {"error": True})
                error = ErrorFrame(error=str(args.get("error", "boom")))
                # Set after construction: the constructor warns that `fatal` is deprecated,
                # and it is still what makes the worker cancel the pipeline (pipecat 1.14).
                error.fatal = bool(args.get("fatal", False))
                # Only upstream ErrorFrames reach the RTVIProcessor (which sends RTVI `error`).
                await self.push_frame(error, FrameDirection.UPSTREAM)
            case "end":
                await self._respond(msg, {"ending": True})
                # The same graceful end as the client's disconnect-bot.
                await self.push_frame(EndWorkerFrame())
            case "metrics":
                await self._push_metrics(args)
                await self._respond(msg, {"sent": True})
            case "user-speaking":
                await self.push_frame(UserStartedSpeakingFrame())
                await self.push_frame(UserStoppedSpeakingFrame())
                await self._respond(msg, {"sent": True})
            case "interrupt":
                # An InterruptionFrame both ways, as a barge-in would: the observer sends
                # bot-interrupted and the WebSocket serializer a protobuf InterruptionFrame.
                await self.broadcast_interruption()
                await self._respond(msg, {"interrupted": True})
            case "renegotiate":
                await self._ask_renegotiate(msg)
            case "drop-pc":
                await self._drop_pc(msg, str(args.get("mode", "close")))
            case _:
                await self._respond(msg, msg.data)

    async def _play_tone(self, ms: int, hz: float) -> int:
        """Queue a sine tone as bot speech; returns its length in samples."""
        pcm = sine_pcm16(ms, hz, self._out_sample_rate)
        chunk = self._out_sample_rate * TONE_CHUNK_MS // 1000 * 2
        for start in range(0, len(pcm), chunk):
            await self.push_frame(
                SpeechOutputAudioRawFrame(
                    audio=pcm[start : start + chunk],
                    sample_rate=self._out_sample_rate,
                    num_channels=1,
                )
            )
        return len(pcm) // 2

    async def _fake_transcription(self, text: str):
        """An interim then a final transcription, as an STT service would push them."""
        interim = text[: len(text) // 2]
        await self.push_frame(
            InterimTranscriptionFrame(
                text=interim, user_id=PEER_USER_ID, timestamp=time_now_iso8601()
            )
        )
        await self.push_frame(
            TranscriptionFrame(text=text, user_id=PEER_USER_ID, timestamp=time_now_iso8601())
        )

    async def _start_function_call(self, msg: RTVIClientMessageFrame, args: dict):
        """Announce a function call as an LLM service would; the client answers it."""
        self._fn_calls += 1
        name = str(args.get("function_name", "get_weather"))
        tool_call_id = str(args.get("tool_call_id", f"call-{self._fn_calls}"))
        arguments = args.get("arguments", {})
        await self.push_frame(
            FunctionCallsStartedFrame(
                function_calls=[
                    FunctionCallFromLLM(
                        function_name=name,
                        tool_call_id=tool_call_id,
                        arguments=arguments,
                        context=None,
                    )
                ]
            )
        )
        await self.push_frame(
            FunctionCallInProgressFrame(
                function_name=name, tool_call_id=tool_call_id, arguments=arguments
            )
        )
        await self._respond(msg, {"tool_call_id": tool_call_id})

    async def _push_metrics(self, args: dict):
        processor = str(args.get("processor", self.name))
        model = args.get("model", "peer-model")
        await self.push_frame(
            MetricsFrame(
                data=[
                    TTFBMetricsData(
                        processor=processor, model=model, value=float(args.get("ttfb", 0.123))
                    ),
                    ProcessingMetricsData(
                        processor=processor,
                        model=model,
                        value=float(args.get("processing", 0.045)),
                    ),
                ]
            )
        )

    async def _ask_renegotiate(self, msg: RTVIClientMessageFrame):
        if self._connection is None:
            await self._respond_error(msg, "renegotiate needs the SmallWebRTC transport")
            return
        # SmallWebRTCConnection sends {"type":"signalling","message":{"type":"renegotiate"}}
        # unless a renegotiation is already in progress: it clears that flag 2 s after the
        # client's renegotiation offer has been handled, so a request before that is a no-op.
        already = bool(getattr(self._connection, "_renegotiation_in_progress", False))
        self._connection.ask_to_renegotiate()
        await self._respond(msg, {"requested": not already})

    async def _drop_pc(self, msg: RTVIClientMessageFrame, mode: str):
        """Kill the server's peer connection under a running pipeline.

        The connection's listeners are removed first, so neither the transport nor the
        runner learn of the close: the pipeline goes on as if the network had failed, and
        the client can recover with `restart_pc` (new offer, old pc_id, restart_pc: true).

        Modes: `close` (aiortc's close: the client gets an SCTP ABORT and a DTLS
        close_notify, so it notices at once) and `silent` (the ICE transport is stopped
        first, so nothing more is sent: the client only notices its ICE consent failing).
        """
        if self._connection is None:
            await self._respond_error(msg, "drop-pc needs the SmallWebRTC transport")
            return
        if mode not in ("close", "silent"):
            await self._respond_error(msg, f"unknown drop-pc mode {mode!r}")
            return
        pc = self._connection.pc
        await self._respond(msg, {"dropping": self._connection.pc_id, "mode": mode})

        async def drop():
            await asyncio.sleep(DROP_PC_DELAY_SECS)
            logger.warning(f"{self}: dropping peer connection {self._connection.pc_id} ({mode})")
            pc.remove_all_listeners()
            if mode == "silent":
                ice_transports = {t.receiver.transport.transport for t in pc.getTransceivers()}
                if pc.sctp is not None:
                    ice_transports.add(pc.sctp.transport.transport)
                for ice in ice_transports:
                    await ice.stop()
            await pc.close()

        task = asyncio.create_task(drop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def bot(runner_args: RunnerArguments):
    """Entry point the development runner calls for each session."""
    transport = await create_transport(
        runner_args,
        {
            "webrtc": lambda: TransportParams(audio_in_enabled=True, audio_out_enabled=True),
            "websocket": lambda: FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                serializer=ProtobufFrameSerializer(),
            ),
        },
    )
    connection = (
        runner_args.webrtc_connection
        if isinstance(runner_args, SmallWebRTCRunnerArguments)
        else None
    )
    peer = PeerProcessor(echo=OPTIONS.echo, webrtc_connection=connection)
    worker = PipelineWorker(
        Pipeline([transport.input(), peer, transport.output()]),
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
            audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
        ),
        rtvi_observer_params=RTVIObserverParams(
            function_call_report_level={"*": RTVIFunctionCallReportLevel.FULL}
        ),
        idle_timeout_secs=runner_args.pipeline_idle_timeout_secs,
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client):
        logger.info(f"peer-bot: client connected (session {runner_args.session_id})")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client):
        logger.info(f"peer-bot: client disconnected (session {runner_args.session_id})")
        await worker.cancel()

    runner = WorkerRunner(
        handle_sigint=runner_args.handle_sigint, handle_sigterm=runner_args.handle_sigterm
    )
    await runner.add_workers(worker)
    await runner.run()
    logger.info(f"peer-bot: session {runner_args.session_id} finished")


def patch_loopback_ice():
    """Make aiortc gather 127.0.0.1 as its only host candidate.

    aioice's `get_host_addresses` skips 127.0.0.1 on purpose, so a bot on a machine whose
    only reachable address is loopback would offer no usable candidate. `Connection.
    gather_candidates` looks the function up in its module at call time, so replacing the
    module attribute is enough.
    """
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def bound_runner_shutdown():
    """Make the runner's uvicorn server stop within a bounded time on SIGTERM / SIGINT.

    A SmallWebRTC session runs as a background task of its offer request, and uvicorn waits
    for such tasks without limit: a bot with a connected client would never exit. This gives
    running sessions SHUTDOWN_GRACE_SECS, then cancels them (the SmallWebRTC handler then
    closes every peer connection, sending `peerLeft`), and exits hard if anything still hangs.
    """
    import uvicorn

    class BoundedServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            timer = threading.Timer(HARD_EXIT_SECS, lambda: os._exit(1))
            timer.daemon = True
            timer.start()

    def run(app, **kwargs):
        kwargs.setdefault("timeout_graceful_shutdown", SHUTDOWN_GRACE_SECS)
        BoundedServer(uvicorn.Config(app, **kwargs)).run()

    # pipecat.runner.run calls `uvicorn.run(app, host=..., port=...)` through the module.
    uvicorn.run = run


def parse_own_flags(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Split our flags from the runner's: returns (our options, argv for the runner)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--no-echo", dest="echo", action="store_false")
    parser.add_argument("--loopback-ice", action="store_true")
    return parser.parse_known_args(argv)


def runner_compatible_args(args: list[str]) -> list[str]:
    """The runner's arguments, minus what this pipecat-ai release's runner does not know.

    `-t websocket` restricts `/start` to the WebSocket transport. The runner of 1.3 does not
    accept that value (its `-t` knows daily, webrtc and telephony only) but serves plain
    WebSocket clients on `/ws-client` and `/start {"transport":"websocket"}` whenever no `-t`
    is given, so dropping it keeps the bot usable. 1.12.0 is the oldest release checked to
    accept it.
    """
    if PIPECAT_VERSION >= (1, 12):
        return args
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-t", "--transport") and args[i + 1 : i + 2] == ["websocket"]:
            skip = True
            continue
        if arg in ("-t=websocket", "--transport=websocket"):
            continue
        out.append(arg)
    return out


def main():
    """Parse our flags, prepare the process and hand over to pipecat's development runner."""
    global OPTIONS
    OPTIONS, rest = parse_own_flags(sys.argv[1:])
    rest = runner_compatible_args(rest)
    sys.argv = [sys.argv[0], *rest]

    # Everything (the runner's banner, uvicorn's access log) goes to stderr: a harness that
    # pipes stdout and never reads it must not block the bot.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    # SIGTERM before the server runs, or re-raised by uvicorn after its graceful shutdown,
    # ends the process with status 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    if OPTIONS.loopback_ice:
        patch_loopback_ice()
    bound_runner_shutdown()

    from pipecat.runner.run import main as runner_main

    code = 0
    try:
        runner_main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        code = 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    # Some libraries leave non-daemon threads behind; the server is down, so do not wait.
    os._exit(code)


if __name__ == "__main__":
    main()

"""How far behind a live camera a slow reader falls: VideoSource with and without ``latest``.

A local HTTP server streams MJPEG frames at ``--fps`` (each frame's number written into its pixels), like an IP
camera; a reader slower than that (``--reader-fps``, standing in for the pipeline) reads it through OpenCV's own
network reader. Printed per mode: how many frames old each read frame was (first, median, last) and the frames
dropped. Without ``latest`` the lag grows for as long as the reader runs; with it, it stays at a frame or two.

    python benchmarks/live_lag.py [--fps 25] [--reader-fps 10] [--reads 40] [--json]
"""

from __future__ import annotations

import argparse
import http.server
import json
import socketserver
import threading
import time

import cv2
import numpy as np

from sdk.capture import VideoSource


class MjpegCamera:
    """An MJPEG stream on 127.0.0.1 at ``fps``: frame n (counted from the start) has n % 256 in blue and
    n // 256 in green."""

    def __init__(self, fps: float) -> None:
        self.fps, self.start = fps, time.monotonic()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                n = camera.now()
                try:
                    while True:
                        while camera.now() < n:
                            time.sleep(0.001)
                        data = camera.jpeg(n)
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                        self.wfile.write(head + data + b"\r\n")
                        n += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def now(self) -> int:
        """The number of the frame the camera is showing now."""
        return int((time.monotonic() - self.start) * self.fps)

    @staticmethod
    def jpeg(n: int) -> bytes:
        img = np.zeros((240, 320, 3), np.uint8)
        img[..., 0], img[..., 1] = n % 256, n // 256 % 256
        return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()

    @staticmethod
    def number(image: np.ndarray) -> int:
        return int(round(image[..., 0].mean())) + 256 * int(round(image[..., 1].mean()))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure(camera: MjpegCamera, latest: bool, reads: int, reader_fps: float) -> dict[str, object]:
    """Read ``reads`` frames at ``reader_fps``; how many frames behind the camera each one was."""
    lags = []
    with VideoSource(camera.url, latest=latest) as src:
        for _ in range(reads):
            frame = src.read()
            assert frame is not None, "the stream ended"
            lags.append((camera.now() - camera.number(frame.image)) % 65536)
            time.sleep(1.0 / reader_fps)
        dropped = src.dropped
    return {
        "latest": latest,
        "lag_frames": {"first": lags[0], "median": int(np.median(lags)), "last": lags[-1]},
        "dropped": dropped,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=25.0, help="the camera's frame rate")
    ap.add_argument("--reader-fps", type=float, default=10.0, help="the reader's (pipeline's) rate")
    ap.add_argument("--reads", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    camera = MjpegCamera(args.fps)
    try:
        results = [measure(camera, latest, args.reads, args.reader_fps) for latest in (False, True)]
    finally:
        camera.close()
    for r in results:
        if args.json:
            print(json.dumps(r))
        else:
            lag = r["lag_frames"]
            print(
                f"latest={r['latest']!s:5}  frames behind the camera: first {lag['first']}, median {lag['median']}, "
                f"last {lag['last']}; dropped {r['dropped']}"
            )


if __name__ == "__main__":
    main()

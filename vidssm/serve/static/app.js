// vidssm live page: webcam → canvas → JPEG → WebSocket; shows the predictions the server returns.
// Binary messages are a 4-byte little-endian frame id followed by the JPEG. One frame is in flight at a time,
// so a slow server lowers the frame rate instead of building a queue.
"use strict";

const params = new URLSearchParams(location.search);
const maxFrames = Number(params.get("frames") || 0); // stop after this many frames (0: never)
const autostart = params.has("autostart");
const sendWidth = Number(params.get("width") || 320);

const $ = (id) => document.getElementById(id);
const video = $("video"), canvas = $("canvas");
// Everything a test (or a curious user) may want to read back.
const stats = window.vidssmStats = {
  ready: false, info: null, sent: 0, received: 0, sentIds: [], predictions: [], errors: [], resets: 0, done: false,
  lastNextFrame: null, // the newest predicted frame (a PNG data URL), for next-frame predictors
  dropped: 0, // frames the server dropped because a newer one arrived before the model got to them
};

let ws = null, running = false, inFlight = null, nextId = 1, lastTimes = [];

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${proto}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { $("status").textContent = "connected"; };
  ws.onclose = () => { $("status").textContent = "disconnected"; running = false; };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
}

function onMessage(msg) {
  if (msg.type === "ready") {
    stats.ready = true; stats.info = msg;
    $("status").textContent = `connected · ${msg.model} · ${msg.frame_size.join("×")}`;
    $("predicted-box").hidden = !msg.predicts_frames;
    $("notice").textContent = msg.notice || ""; // once: why early predictions are not calibrated
    $("notice").hidden = !msg.notice;
    if (autostart) start();
  } else if (msg.type === "prediction") {
    const rtt = inFlight && inFlight.id === msg.id ? performance.now() - inFlight.t0 : NaN;
    stats.received += 1;
    stats.predictions.push({
      id: msg.id, frame: msg.frame, top: msg.top, rtt: rtt, step_ms: msg.step_ms,
      next_frame: Boolean(msg.next_frame), frame_mse: msg.predicted_frame_mse ?? null,
    });
    if (stats.predictions.length > 1000) stats.predictions.shift(); // bounded
    show(msg, rtt);
    if (inFlight && inFlight.id === msg.id) { inFlight = null; schedule(); }
  } else if (msg.type === "error") {
    stats.errors.push(msg);
    if (stats.errors.length > 100) stats.errors.shift();
    $("error").textContent = `${msg.code}: ${msg.message}`;
    if (inFlight && msg.id === inFlight.id) { inFlight = null; setTimeout(schedule, 100); }
  } else if (msg.type === "dropped") {
    stats.dropped = msg.dropped;
    $("dropped").textContent = String(msg.dropped);
    if (inFlight && msg.id === inFlight.id) { inFlight = null; schedule(); }
  } else if (msg.type === "reset") {
    stats.resets += 1;
  }
}

function show(msg, rtt) {
  $("calibration").textContent = msg.calibrated === false ? "not calibrated yet (too few frames)" : "";
  const list = $("top");
  list.replaceChildren(...msg.top.map((t) => {
    const li = document.createElement("li");
    li.textContent = `${t.label} ${(100 * t.prob).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar"; bar.style.width = `${Math.round(100 * t.prob)}px`;
    li.appendChild(bar);
    return li;
  }));
  if (msg.next_frame) {
    // what the model expects the camera to show next, at the model's resolution
    $("predicted").src = msg.next_frame;
    stats.lastNextFrame = msg.next_frame;
    const mse = msg.predicted_frame_mse;
    $("mse").textContent = mse === undefined ? "–" : mse.toFixed(4);
  }
  const now = performance.now();
  lastTimes.push(now); while (lastTimes.length > 30) lastTimes.shift();
  const fps = lastTimes.length > 1 ? (1000 * (lastTimes.length - 1)) / (now - lastTimes[0]) : 0;
  $("rtt").textContent = Number.isFinite(rtt) ? `${rtt.toFixed(1)} ms` : "–";
  $("step").textContent = `${msg.step_ms.toFixed(1)} ms`;
  $("fps").textContent = fps.toFixed(1);
  $("count").textContent = `${stats.sent} / ${stats.received}`;
  stats.dropped = msg.dropped ?? stats.dropped;
  $("dropped").textContent = String(stats.dropped);
}

async function start() {
  if (running) return;
  try {
    if (!video.srcObject) {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
      await video.play();
    }
    running = true;
    schedule();
  } catch (err) {
    $("error").textContent = `camera: ${err.name}: ${err.message}`;
    stats.errors.push({ code: "camera", message: String(err) });
  }
}

function schedule() {
  if (!running || inFlight || !ws || ws.readyState !== WebSocket.OPEN) return;
  if (maxFrames && stats.sent >= maxFrames) { running = false; stats.done = true; return; }
  requestAnimationFrame(sendFrame);
}

function sendFrame() {
  if (!running || inFlight || video.videoWidth === 0) { setTimeout(schedule, 30); return; }
  inFlight = { id: -1, t0: performance.now() }; // reserved: no second frame while this one is encoded
  const scale = Math.min(1, sendWidth / video.videoWidth);
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob(async (blob) => {
    if (!blob) { inFlight = null; setTimeout(schedule, 50); return; }
    const id = nextId++;
    const body = new Uint8Array(4 + blob.size);
    new DataView(body.buffer).setUint32(0, id, true);
    body.set(new Uint8Array(await blob.arrayBuffer()), 4);
    inFlight = { id: id, t0: performance.now() };
    stats.sent += 1; stats.sentIds.push(id);
    if (stats.sentIds.length > 1000) stats.sentIds.shift();
    ws.send(body);
  }, "image/jpeg", 0.85);
}

function reset() {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "reset" }));
}

$("start").onclick = start;
$("reset").onclick = reset;
window.vidssmReset = reset;
connect();

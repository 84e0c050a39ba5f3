// The room page: listen (one MediaSource per speaker's track, kept at the live edge), speak
// (MediaRecorder chunks over a WebSocket), react, raise a hand; replay an ended room.
"use strict";
(function () {
  const roomId = location.pathname.split("/").filter(Boolean).pop();
  const INIT = 1, CLUSTER = 2, END = 3, HEADER = 9;
  const LIVE_EDGE = 0.3, MAX_BEHIND = 1.0, KEEP_SECONDS = 20;
  const $ = (id) => document.getElementById(id);
  // What a test (or a curious person in the console) can read about playback.
  const stats = (window.roomStats = {
    listening: false, connected: false, clustersAppended: 0, tracks: 0, level: 0,
    firstAudioAt: null, listenStartedAt: null, behind: null, retries: 0, chunksSent: 0, closeCode: null,
  });

  function token() {
    const fragment = new URLSearchParams(location.hash.slice(1)).get("access_token");
    if (fragment) {
      localStorage.setItem("townsquare_token", fragment);
      history.replaceState(null, "", location.pathname);
    }
    return fragment || localStorage.getItem("townsquare_token") || "";
  }
  const accessToken = token();

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (accessToken) headers.Authorization = "Bearer " + accessToken;
    // Without a token, the web app's session cookie goes along; changes need the CSRF token.
    else headers["X-CSRF-Token"] = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(path, {
      method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function socketUrl(kind) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = accessToken ? "?access_token=" + encodeURIComponent(accessToken) : "";
    return `${scheme}//${location.host}/api/v1/rooms/${roomId}/${kind}${query}`;
  }

  function notice(text) { $("notice").textContent = text; }

  // ---- the room and its people -------------------------------------------------------------
  let room = null;
  const speakingTracks = new Map(); // track id → account id

  async function refresh() {
    room = await api("GET", `/api/v1/rooms/${roomId}`);
    document.title = `${room.title} · Townsquare`;
    $("title").textContent = room.title;
    $("host").textContent = "Hosted by " + (room.host.display_name || room.host.username);
    $("state").textContent = room.state;
    $("state").className = "state " + room.state;
    $("listeners").textContent = room.listeners_count;
    const live = room.state === "live";
    const speaker = ["host", "cohost", "speaker"].includes(room.role) && !room.muted;
    $("listen").hidden = !live;
    $("speak").hidden = !live || !speaker || recorder !== null;
    const loggedIn = room.role !== null || Boolean(accessToken);
    $("hand").hidden = !live || !loggedIn || speaker || room.role === "host";
    $("hand").textContent = room.hand_raised ? "Lower hand" : "Raise hand";
    $("end").hidden = !live || !["host", "cohost"].includes(room.role);
    $("reactions").hidden = !live || !loggedIn;
    if (room.state === "ended") await showRecording();
    await refreshPeople();
  }

  async function refreshPeople() {
    const people = await api("GET", `/api/v1/rooms/${roomId}/participants`);
    const speakingAccounts = new Set(speakingTracks.values());
    const manage = room && ["host", "cohost"].includes(room.role);
    $("people").replaceChildren(...people.map((person) => {
      const item = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = person.account.display_name || person.account.username;
      const role = document.createElement("span");
      role.className = "role";
      role.textContent = person.role + (person.hand_raised_at ? " ✋" : "") + (person.muted ? " (muted)" : "");
      item.append(name, role);
      if (speakingAccounts.has(person.account.id)) item.className = "speaking";
      if (manage && person.role !== "host") {
        const actions = person.role === "listener" ? [["speakers", "Invite to speak"]]
          : [["mute", person.muted ? null : "Mute"], ["unmute", person.muted ? "Unmute" : null],
             ["listeners", "Make listener"]];
        for (const [path, label] of [...actions, ["remove", "Remove"]]) {
          if (!label) continue;
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = label;
          button.onclick = () => api("POST", `/api/v1/rooms/${roomId}/${path}`, { account_id: person.account.id })
            .then(refreshPeople, (error) => notice(error.message));
          item.append(button);
        }
      }
      return item;
    }));
  }

  // ---- listening ---------------------------------------------------------------------------
  class TrackPlayer {
    constructor(id) {
      this.id = id;
      this.queue = [];
      this.audio = new Audio();
      this.audio.autoplay = true;
      this.source = new MediaSource();
      this.buffer = null;
      this.audio.src = URL.createObjectURL(this.source);
      this.source.addEventListener("sourceopen", () => {
        this.buffer = this.source.addSourceBuffer('audio/webm; codecs="opus"');
        this.buffer.mode = "segments";
        this.buffer.addEventListener("updateend", () => this.afterAppend());
        this.pump();
      });
      measure(this.audio);
    }
    append(bytes) { this.queue.push(bytes); this.pump(); }
    pump() {
      if (!this.buffer || this.buffer.updating || !this.queue.length) return;
      try { this.buffer.appendBuffer(this.queue.shift()); } catch (error) { this.queue = []; }
    }
    afterAppend() {
      stats.clustersAppended += 1;
      const ranges = this.buffer.buffered;
      if (ranges.length) {
        const end = ranges.end(ranges.length - 1);
        const behind = end - this.audio.currentTime;
        // Keep to the live edge: jump when too far behind (or before the first audio).
        if (behind > MAX_BEHIND || this.audio.currentTime < ranges.start(0)) {
          this.audio.currentTime = Math.max(ranges.start(ranges.length - 1), end - LIVE_EDGE);
        }
        if (this.audio.paused) this.audio.play().catch(() => {});
        stats.behind = end - this.audio.currentTime;
        const start = ranges.start(0);
        if (!this.buffer.updating && end - start > KEEP_SECONDS * 2) {
          this.buffer.remove(start, end - KEEP_SECONDS);
          return;
        }
      }
      this.pump();
    }
    close() {
      this.audio.pause();
      URL.revokeObjectURL(this.audio.src);
      this.audio.removeAttribute("src");
    }
  }

  let audioContext = null;
  function measure(audio) {
    // The loudness of what is played: the page shows who is heard; tests check it.
    audioContext = audioContext || new AudioContext();
    const analyser = audioContext.createAnalyser();
    const sourceNode = audioContext.createMediaElementSource(audio);
    sourceNode.connect(analyser);
    analyser.connect(audioContext.destination);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      const level = Math.sqrt(sum / samples.length);
      if (level > 0.01 && stats.firstAudioAt === null) stats.firstAudioAt = performance.now();
      stats.level = Math.max(stats.level, level);
    };
    const timer = setInterval(() => (audio.src ? tick() : clearInterval(timer)), 50);
  }

  const players = new Map();
  let listenSocket = null;

  function listen(attempt = 0) {
    stats.listening = true;
    if (stats.listenStartedAt === null) stats.listenStartedAt = performance.now();
    if (audioContext) audioContext.resume();
    const socket = new WebSocket(socketUrl("listen"));
    socket.binaryType = "arraybuffer";
    listenSocket = socket;
    let opened = false;
    socket.onopen = () => { opened = true; stats.connected = true; notice("Listening"); };
    socket.onmessage = (message) => {
      if (typeof message.data === "string") return onEvent(JSON.parse(message.data));
      const view = new DataView(message.data);
      const kind = view.getUint8(0);
      const track = view.getBigUint64(1).toString();
      const payload = message.data.slice(HEADER);
      if (kind === INIT) {
        if (players.has(track)) players.get(track).close();
        const player = new TrackPlayer(track);
        players.set(track, player);
        stats.tracks = players.size;
        player.append(payload);
      } else if (kind === CLUSTER && players.has(track)) {
        players.get(track).append(payload);
      } else if (kind === END && players.has(track)) {
        players.get(track).close();
        players.delete(track);
        stats.tracks = players.size;
      }
    };
    socket.onclose = (event) => {
      stats.connected = false;
      stats.closeCode = event.code;
      if (!stats.listening) return;
      if (event.code === 4003) return notice("You were removed from this room.");
      if (event.code === 1000 && event.reason === "ended") return refresh();
      // Refused (a join storm answers 503) or dropped: retry with backoff and jitter.
      stats.retries += 1;
      const delay = Math.min(30, 0.5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random());
      notice(opened ? "Reconnecting…" : "The room is busy; joining shortly…");
      setTimeout(() => listen(opened ? 0 : attempt + 1), delay * 1000);
    };
  }

  function onEvent(event) {
    if (event.type === "listeners") $("listeners").textContent = event.count;
    else if (event.type === "reaction") float(event.emoji);
    else if (event.type === "speaking") { speakingTracks.set(event.track, event.account_id); refreshPeople(); }
    else if (event.type === "speaker_left") { speakingTracks.delete(event.track); refreshPeople(); }
    else if (event.type === "ended") { stats.listening = false; stopSpeaking(); refresh(); }
    else if (["role", "muted", "unmuted", "removed", "hand", "invited"].includes(event.type)) {
      refresh().catch((error) => notice(error.message));
    }
  }

  function float(emoji) {
    const item = document.createElement("span");
    item.textContent = emoji;
    item.style.right = Math.round(Math.random() * 80) + "px";
    $("floating").append(item);
    setTimeout(() => item.remove(), 2600);
  }

  // ---- speaking ----------------------------------------------------------------------------
  let recorder = null;
  let speakSocket = null;

  async function speak() {
    const media = await navigator.mediaDevices.getUserMedia({ audio: true });
    speakSocket = new WebSocket(socketUrl("speak"));
    speakSocket.binaryType = "arraybuffer";
    recorder = new MediaRecorder(media, { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
    let sending = Promise.resolve();
    recorder.ondataavailable = (event) => {
      if (!event.data.size) return;
      // Chunks go out in the order they were recorded.
      sending = sending.then(() => event.data.arrayBuffer()).then((bytes) => {
        if (speakSocket && speakSocket.readyState === WebSocket.OPEN) {
          speakSocket.send(bytes);
          stats.chunksSent += 1;
        }
      });
    };
    speakSocket.onopen = () => { recorder.start(250); notice("You are speaking"); };
    speakSocket.onclose = (event) => {
      if (event.code === 4009) notice("You were muted.");
      stopSpeaking();
    };
    $("speak").hidden = true;
    $("stop-speaking").hidden = false;
  }

  function stopSpeaking() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (recorder) recorder.stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    if (speakSocket && speakSocket.readyState <= WebSocket.OPEN) speakSocket.close();
    speakSocket = null;
    $("stop-speaking").hidden = true;
    if (room) refresh().catch(() => {});
  }

  // ---- an ended room's recording -------------------------------------------------------------
  async function showRecording() {
    const playlist = await api("GET", `/api/v1/rooms/${roomId}/playlist`);
    $("replay").hidden = !playlist.tracks.length;
    $("recordings").replaceChildren(...playlist.tracks.map((track) => {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = track.recording_url;
      return audio;
    }));
  }

  $("listen").onclick = () => {
    $("listen").hidden = true;
    audioContext = audioContext || new AudioContext();
    listen();
  };
  $("speak").onclick = () => speak().catch((error) => notice(error.message));
  $("stop-speaking").onclick = stopSpeaking;
  $("hand").onclick = () => api(room.hand_raised ? "DELETE" : "POST", `/api/v1/rooms/${roomId}/hand`)
    .then(refresh, (error) => notice(error.message));
  $("end").onclick = () => api("POST", `/api/v1/rooms/${roomId}/end`).then(refresh);
  $("reactions").onclick = (event) => {
    const emoji = event.target.dataset && event.target.dataset.emoji;
    if (emoji) api("POST", `/api/v1/rooms/${roomId}/reactions`, { emoji }).catch((error) => notice(error.message));
  };
  refresh().catch((error) => { $("state").textContent = "unavailable"; notice(error.message); });
})();

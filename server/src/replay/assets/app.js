// Capture's replay page: login, search, the synced player, the audit log, users.
// No framework: the page is small, and every byte of it is served from the binary.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const { dataset, ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset || {});
  for (const child of children) node.append(child);
  return node;
};
const PAGE = 25;
let me = null; // {username, role, csrf, may}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (me && me.csrf && options.method && options.method !== "GET") headers["X-CSRF-Token"] = me.csrf;
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
  });
  if (response.status === 401 && path !== "/api/v1/login") {
    me = null;
    show("login");
    throw new Error("Your session ended: log in again.");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((data && data.message) || response.statusText);
  return data;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toLocaleString();
}
function fmtClock(s) {
  if (!isFinite(s)) s = 0;
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
}

function show(view) {
  for (const name of ["login", "search", "player", "audit", "users"]) {
    $("#" + name + "-view").hidden = name !== view;
  }
  $("#bar").hidden = view === "login";
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.id === "nav-" + view);
  }
  if (view !== "player") player.stop();
}

// ---- login ----
$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    me = await api("/api/v1/login", {
      method: "POST",
      body: { username: $("#login-username").value, password: $("#login-password").value },
    });
    $("#login-password").value = "";
    route();
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
});
$("#logout").addEventListener("click", async () => {
  try { await api("/api/v1/logout", { method: "POST" }); } catch (_) { /* already out */ }
  me = null;
  location.hash = "";
  $("#login-form").reset();
  show("login");
});

function applyMe() {
  $("#who").textContent = me.username + (me.role ? " · " + me.role : "");
  $("#nav-search").hidden = !me.may.includes("replay");
  $("#nav-audit").hidden = !me.may.includes("audit");
  $("#nav-users").hidden = !me.may.includes("administer");
}

// ---- search ----
let offset = 0;
function searchQuery() {
  const q = new URLSearchParams();
  const put = (key, value) => { if (value !== "" && value !== null) q.set(key, value); };
  const from = $("#search-from").value, to = $("#search-to").value;
  if (from) put("from", new Date(from).getTime());
  if (to) put("to", new Date(to).getTime());
  put("agent", $("#search-agent").value.trim());
  put("number", $("#search-number").value.trim());
  put("direction", $("#search-direction").value);
  put("min_duration_s", $("#search-min").value);
  put("max_duration_s", $("#search-max").value);
  put("has_screen", $("#search-screen").value);
  put("has_audio", $("#search-audio").value);
  put("call_session_id", $("#search-session").value.trim());
  q.set("limit", PAGE);
  q.set("offset", offset);
  return q;
}

let searchSeq = 0;
async function search() {
  const body = $("#results tbody");
  const seq = ++searchSeq;
  try {
    const page = await api("/api/v1/interactions?" + searchQuery());
    // An older search answering after a newer one must not replace its results.
    if (seq !== searchSeq) return;
    body.replaceChildren();
    for (const item of page.items) {
      const media = [];
      if (item.has_screen) media.push(el("span", { className: "tag", textContent: "screen" }));
      if (item.has_audio) media.push(el("span", { className: "tag", textContent: "audio" }));
      if (item.missing) media.push(el("span", { className: "tag missing", textContent: "no " + item.missing }));
      const row = el("tr", { dataset: { id: item.id } },
        el("td", { textContent: fmtTime(item.start_ms) }),
        el("td", { textContent: item.length_s === null ? "—" : fmtClock(item.length_s) }),
        el("td", { textContent: item.agents.filter((a) => !a.includes("@")).join(", ") || item.agents.join(", ") }),
        el("td", { textContent: item.remote_numbers.join(", ") }),
        el("td", { textContent: item.direction || "" }),
        el("td", {}, ...media),
        el("td", { textContent: item.state + (item.legal_hold ? " · hold" : "") }));
      row.addEventListener("click", () => { location.hash = "#/interaction/" + item.id; });
      body.append(row);
    }
    $("#results-empty").hidden = page.items.length > 0;
    $("#prev").disabled = offset === 0;
    $("#next").disabled = page.next_offset === null;
    $("#page").textContent = page.items.length ? `${offset + 1}–${offset + page.items.length}` : "";
  } catch (error) {
    if (seq !== searchSeq) return;
    $("#results-empty").hidden = false;
    $("#results-empty").textContent = error.message;
  }
}
$("#search-form").addEventListener("submit", (event) => { event.preventDefault(); offset = 0; search(); });
$("#prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); search(); });
$("#next").addEventListener("click", () => { offset += PAGE; search(); });

// ---- player ----
const player = {
  master: null, // the element whose clock the others follow: the audio, else the first screen
  videos: [],
  timeline: null,
  raf: 0,
  stop() {
    cancelAnimationFrame(this.raf);
    for (const media of [$("#player-audio"), ...this.videos]) {
      media.pause();
    }
    $("#player-audio").removeAttribute("src");
    $("#player-audio").load();
    this.videos = [];
    this.master = null;
    $("#screens").replaceChildren();
  },
  duration() { return this.timeline ? this.timeline.duration_ms / 1000 : 0; },
  seek(seconds) {
    const t = Math.min(Math.max(0, seconds), this.duration());
    for (const media of this.all()) media.currentTime = t;
    this.paint();
  },
  all() { return [this.master, ...this.videos.filter((v) => v !== this.master)].filter(Boolean); },
  toggle() {
    if (!this.master) return;
    if (this.master.paused) this.play(); else this.pause();
  },
  play() {
    const t = this.master.currentTime;
    for (const media of this.all()) {
      if (media !== this.master) media.currentTime = t;
      media.play().catch(() => {});
    }
  },
  pause() { for (const media of this.all()) media.pause(); },
  rate(value) { for (const media of this.all()) media.playbackRate = value; $("#speed").value = String(value); },
  // Keeps every screen on the master's clock (a drifting element is moved back).
  follow() {
    const t = this.master ? this.master.currentTime : 0;
    for (const video of this.videos) {
      if (video === this.master) continue;
      if (Math.abs(video.currentTime - t) > 0.15 && video.readyState > 0) video.currentTime = t;
      if (this.master && !this.master.paused && video.paused) video.play().catch(() => {});
    }
    this.paint();
    this.raf = requestAnimationFrame(() => this.follow());
  },
  paint() {
    if (!this.timeline) return;
    const t = this.master ? this.master.currentTime : 0;
    const d = this.duration() || 1;
    $("#playhead").style.left = (100 * t / d) + "%";
    $("#clock").textContent = fmtClock(t) + " / " + fmtClock(d);
    $("#play").textContent = this.master && !this.master.paused ? "❚❚" : "▶";
    for (const video of this.videos) {
      const [from, to, overlay] = video.coverage || [0, Infinity, null];
      if (overlay) {
        overlay.hidden = t >= from - 0.05 && t <= to + 0.05;
        // Past a monitor's end (unplugged or changed during the call): why, as the agent said.
        overlay.textContent = t > to && video.endedReason ? video.endedReason : overlay.dataset.text;
      }
    }
    const ms = t * 1000;
    const here = this.timeline.blanks.filter((b) => b.from_offset_ms <= ms && ms < b.to_offset_ms);
    $("#blank-label").textContent = here.map((b) => b.label).join(" · ");
  },
};

function placeOnTimeline(node, fromMs, toMs, duration) {
  node.style.left = (100 * fromMs / duration) + "%";
  if (toMs !== undefined) node.style.width = (100 * Math.max(0, toMs - fromMs) / duration) + "%";
}

async function openInteraction(id) {
  show("player");
  $("#player-error").textContent = "";
  player.stop();
  let detail, timeline;
  try {
    [detail, timeline] = await Promise.all([
      api("/api/v1/interactions/" + encodeURIComponent(id)),
      api("/api/v1/interactions/" + encodeURIComponent(id) + "/timeline"),
    ]);
  } catch (error) {
    $("#player-error").textContent = error.message;
    return;
  }
  const interaction = detail.interaction;
  player.timeline = timeline;
  const owners = [...new Set(timeline.legs.map((leg) => leg.owner).filter(Boolean))];
  const who = owners.length ? owners : interaction.agents.filter((a) => !a.includes("@"));
  $("#player-title").textContent = `${fmtTime(interaction.start_ms)} · ${who.join(", ")}`
    + (interaction.remote_numbers.length ? ` · ${interaction.remote_numbers[0]}` : "");
  const facts = [
    ["State", interaction.state + (interaction.legal_hold ? " (legal hold)" : "")],
    ["Start", fmtTime(interaction.start_ms)],
    ["Length", interaction.length_s === null ? "—" : fmtClock(interaction.length_s)],
    ["Direction", interaction.direction || "—"],
    ["Remote", interaction.remote_numbers.join(", ") || "—"],
    ["Agents", interaction.agents.join(", ") || "—"],
    ["Missing", interaction.missing || "nothing"],
    ["Call session", interaction.call_session_id],
  ];
  $("#facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: v })]));
  $("#legs").replaceChildren(...timeline.legs.map((leg) => el("li", {
    textContent: `${leg.owner || "?"} · ${leg.direction || ""} ${leg.remote_number || ""} ${leg.remote_name || ""} · ${fmtClock(leg.offset_ms / 1000)}–${fmtClock((leg.offset_ms + leg.to_ms - leg.from_ms) / 1000)}`,
  })));
  $("#events").replaceChildren(...timeline.markers.map((m) => {
    const item = el("li", { textContent: `${fmtClock(Math.max(0, m.offset_ms) / 1000)} ${m.kind} · ${m.who}` });
    item.addEventListener("click", () => player.seek(m.offset_ms / 1000));
    return item;
  }));
  const exportLink = $("#export");
  exportLink.hidden = interaction.state !== "archived";
  exportLink.href = "/api/v1/interactions/" + encodeURIComponent(id) + "/export";
  drawTimeline(timeline);
  if (interaction.state !== "archived") {
    $("#player-error").textContent = interaction.state === "deleted"
      ? "This interaction was deleted by the retention policy."
      : `This interaction is ${interaction.state}: it plays once it is archived.`;
    return;
  }
  const base = "/api/v1/interactions/" + encodeURIComponent(id) + "/media?view=";
  const audio = $("#player-audio");
  const screens = $("#screens");
  for (const screen of timeline.screens) {
    const video = el("video", { muted: true, preload: "auto", playsInline: true, className: "screen-video" });
    video.muted = true;
    video.src = base + screen.view;
    video.dataset.view = screen.view;
    const uncovered = el("div", { className: "uncovered", textContent: `${screen.agent}'s screen is not recorded here` });
    uncovered.hidden = true;
    screens.append(el("div", { className: "screen" }, video,
      el("span", { className: "label", textContent: `${screen.agent} · monitor ${screen.monitor + 1}` }), uncovered));
    uncovered.dataset.text = uncovered.textContent;
    video.endedReason = screen.ended || null;
    video.coverage = [screen.from_offset_ms / 1000, screen.to_offset_ms / 1000, uncovered];
    player.videos.push(video);
  }
  $("#no-screen").hidden = timeline.screens.length > 0;
  $("#no-screen").textContent = (timeline.blanks.find((b) => b.lacks === "screen") || {}).label || "No screen";
  if (timeline.has_audio) {
    audio.src = base + "audio";
    player.master = audio;
  } else {
    player.master = player.videos[0] || null;
  }
  if (player.master) {
    player.master.addEventListener("ended", () => player.pause());
    player.master.addEventListener("error", () => {
      $("#player-error").textContent = "The media could not be played.";
    });
  }
  player.rate(Number($("#speed").value));
  player.follow();
}

function drawTimeline(timeline) {
  const d = timeline.duration_ms || 1;
  for (const lane of [".lane-screen", ".lane-audio"]) {
    const node = $(lane);
    node.replaceChildren(node.firstElementChild);
  }
  $(".lane-events").replaceChildren();
  for (const blank of timeline.blanks) {
    const node = el("div", { className: "blank" + (blank.label === "recording paused" ? " paused" : ""), title: blank.label });
    placeOnTimeline(node, blank.from_offset_ms, blank.to_offset_ms, d);
    $(blank.lacks === "audio" ? ".lane-audio" : ".lane-screen").append(node);
  }
  for (const marker of timeline.markers) {
    if (marker.offset_ms < 0 || marker.offset_ms > d) continue;
    const node = el("button", {
      type: "button", className: "marker", title: `${marker.kind} · ${marker.who} · ${fmtTime(marker.at_ms)}`,
    });
    node.dataset.kind = marker.kind;
    node.dataset.offsetMs = marker.offset_ms;
    placeOnTimeline(node, marker.offset_ms, undefined, d);
    node.addEventListener("click", (event) => { event.stopPropagation(); player.seek(marker.offset_ms / 1000); });
    $(".lane-events").append(node);
  }
  player.paint();
}

$("#timeline").addEventListener("click", (event) => {
  const box = $("#timeline").getBoundingClientRect();
  player.seek(player.duration() * (event.clientX - box.left) / box.width);
});
$("#play").addEventListener("click", () => player.toggle());
$("#speed").addEventListener("change", () => player.rate(Number($("#speed").value)));
const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
document.addEventListener("keydown", (event) => {
  if ($("#player-view").hidden || ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
  const t = player.master ? player.master.currentTime : 0;
  const markers = (player.timeline ? player.timeline.markers : []).map((m) => m.offset_ms / 1000).filter((s) => s >= 0);
  const speed = SPEEDS.indexOf(Number($("#speed").value));
  switch (event.key) {
    case " ": player.toggle(); break;
    case "ArrowLeft": player.seek(t - 5); break;
    case "ArrowRight": player.seek(t + 5); break;
    case "Home": player.seek(0); break;
    case "[": player.rate(SPEEDS[Math.max(0, speed - 1)]); break;
    case "]": player.rate(SPEEDS[Math.min(SPEEDS.length - 1, speed + 1)]); break;
    case "n": { const next = markers.find((s) => s > t + 0.25); if (next !== undefined) player.seek(next); break; }
    case "p": { const prev = markers.filter((s) => s < t - 0.25).pop(); player.seek(prev === undefined ? 0 : prev); break; }
    default: return;
  }
  event.preventDefault();
});

// ---- audit ----
let auditBefore = null;
async function loadAudit(more) {
  const q = new URLSearchParams({ limit: 100 });
  for (const [key, input] of [["actor", "#audit-actor"], ["action", "#audit-action"], ["subject", "#audit-subject"]]) {
    if ($(input).value.trim()) q.set(key, $(input).value.trim());
  }
  if (more && auditBefore) q.set("before", auditBefore);
  const page = await api("/api/v1/audit?" + q);
  const body = $("#audit-table tbody");
  if (!more) body.replaceChildren();
  for (const e of page.items) {
    body.append(el("tr", {},
      el("td", { textContent: e.seq }), el("td", { textContent: fmtTime(e.at_ms) }),
      el("td", { textContent: e.actor }), el("td", { textContent: e.action }),
      el("td", { textContent: e.subject }), el("td", { textContent: e.detail || "" })));
  }
  auditBefore = page.next_before;
  $("#audit-more").hidden = auditBefore === null;
}
$("#audit-form").addEventListener("submit", (event) => { event.preventDefault(); loadAudit(false); });
$("#audit-more").addEventListener("click", () => loadAudit(true));
$("#audit-verify").addEventListener("click", async () => {
  const result = await api("/api/v1/audit/verify");
  $("#audit-verified").textContent = result.broken
    ? `BROKEN at entry ${result.broken.seq}: ${result.broken.reason}`
    : `${result.entries} entries verified · head ${result.head.slice(0, 16)}…`;
});

// ---- users ----
async function loadUsers() {
  const page = await api("/api/v1/users");
  $("#users-table tbody").replaceChildren(...page.items.map((u) => {
    const toggle = el("button", { type: "button", textContent: u.disabled ? "Enable" : "Disable" });
    toggle.addEventListener("click", async (event) => {
      event.stopPropagation();
      try {
        await api("/api/v1/users/" + encodeURIComponent(u.username), { method: "PATCH", body: { disabled: !u.disabled } });
        loadUsers();
      } catch (error) { $("#user-message").textContent = error.message; }
    });
    return el("tr", {}, el("td", { textContent: u.username }), el("td", { textContent: u.role }),
      el("td", { textContent: fmtTime(u.created_ms) }), el("td", { textContent: u.disabled ? "disabled" : "active" }),
      el("td", {}, toggle));
  }));
}
$("#user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/api/v1/users", { method: "POST", body: {
      username: $("#user-name").value.trim(), password: $("#user-password").value, role: $("#user-role").value,
    } });
    $("#user-message").textContent = "Added.";
    $("#user-password").value = "";
    loadUsers();
  } catch (error) { $("#user-message").textContent = error.message; }
});

// ---- routing ----
async function route() {
  if (!me) {
    try { me = await api("/api/v1/me"); } catch (_) { show("login"); return; }
  }
  applyMe();
  const hash = location.hash || "";
  const open = hash.match(/^#\/interaction\/([\w-]+)$/);
  if (open && me.may.includes("replay")) return openInteraction(open[1]);
  if (hash === "#/audit" && me.may.includes("audit")) { show("audit"); return loadAudit(false); }
  if (hash === "#/users" && me.may.includes("administer")) { show("users"); return loadUsers(); }
  if (me.may.includes("replay")) { show("search"); return search(); }
  if (me.may.includes("administer")) { location.hash = "#/users"; return; }
  show("search");
}
window.addEventListener("hashchange", route);
route();

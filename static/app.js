/*
 * Skyrocket demo page: the same chat room over WebSocket, Server-Sent Events,
 * long polling and short polling. The wire interface is CONTRACT.md.
 *
 * How this file is laid out, top to bottom:
 *   1. helpers          tiny DOM and URL helpers (user text only ever goes
 *                       in as text nodes, never as HTML)
 *   2. connectors       one per transport, all the same shape:
 *                         start(ctx, since, epoch, onEvent, onState) -> { stop(), send? }
 *                       A connector turns its transport's framing into plain
 *                       event objects ({type:"message"|"hello"|"reset"|"gap"|
 *                       "presence"|"ack"|"error", ...}) and reports its state;
 *                       it does NOT retry, dedupe or render.
 *   3. Pane             owns one cursor (epoch + last id), dedupes by id,
 *                       renders, reconnects with backoff, and sends.
 *   4. totals strip     GET /stats every 2 s.
 *   5. page wiring      nick, room, transport switch, mode toggle.
 *
 * Hooks for browser tests (stable; extend, do not rename):
 *   #nick                    nickname input (remembered in localStorage)
 *   #room                    room input; change event (or Enter) switches room
 *   #transport               <select> ws | sse | longpoll | poll  (single mode)
 *   #interval                short-poll interval in ms, range 250..5000
 *   #mode                    button: click toggles single <-> side-by-side;
 *                            its data-mode and <body data-mode> say which is on
 *                            ("single" | "side")
 *   #text, #send, #compose   the main compose box (single mode)
 *   #online                  presence: who is in the room, per transport
 *   #totals                  the /stats strip; one [data-transport] cell per
 *                            transport with .bpm (wire bytes out / message)
 *                            and .rpm (requests / message)
 *   [data-pane="single"]     the single-mode pane; its data-transport says
 *                            which transport it currently uses
 *   [data-pane="ws"|"sse"|"longpoll"|"poll"]   the side-by-side panes
 *   each pane:
 *     .state                 text and data-state: stopped | connecting | open |
 *                            retrying (SSE's own retry) | reconnecting
 *     .messages li[data-id]  one per chat message, also data-epoch, data-user;
 *                            .user, .text, .lat (receive latency), .rtt (own
 *                            sends: send-to-display time); class "mine" for
 *                            this pane's own sends
 *     .messages li.note      a line from the page, not the room; kinds:
 *                            .gap ("N messages missed"), .reset, .switch,
 *                            .error, .history (old history no longer kept)
 *     .cost [data-k]         counters: messages, requests, dupes
 *     .compose input, .compose button   per-pane send (side-by-side mode)
 *   URL: ?room=NAME&mode=single|side&transport=ws|sse|longpoll|poll
 */
'use strict';

// ---------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------

const TRANSPORTS = ['ws', 'sse', 'longpoll', 'poll'];
const LABELS = { ws: 'WebSocket', sse: 'SSE', longpoll: 'Long polling', poll: 'Short polling' };
const SHORT_LABELS = { ws: 'WS', sse: 'SSE', longpoll: 'Long poll', poll: 'Short poll' };
const ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;    // the contract's rule, checked before we ask
const LONG_POLL_WAIT = 25;                      // seconds the server may hold a long poll
const MAX_ITEMS = 400;                          // lines kept per pane; older ones are dropped
const BACKOFF_FIRST_MS = 250;
const BACKOFF_CAP_MS = 5000;

const $ = (selector, root = document) => root.querySelector(selector);

// Builds an element. Children that are strings become Text nodes (that is
// what Node.append does with a string), so a message like
// <img src=x onerror=alert(1)> is shown as those characters, never parsed.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  node.append(...children);
  return node;
}

// A short random id. Not crypto.randomUUID: that exists only in secure
// contexts, and a projector laptop may open the page over a LAN address.
const randomId = () => Math.random().toString(36).slice(2, 10);

// "/rooms/lobby/poll" + {since: 4, epoch: undefined} -> "/rooms/lobby/poll?since=4"
function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) query.set(k, String(v));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

// WebSocket URLs need an absolute ws:// or wss:// address on this same host.
function wsUrl(pathAndQuery) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${pathAndQuery}`;
}

const roomPath = (room, tail) => `/rooms/${encodeURIComponent(room)}/${tail}`;

function formatMs(ms) {
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60000)} min`;
}

// A sleep that a stop() can cut short.
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Exponential backoff with "equal jitter": half the delay is fixed, half is
// random. The fixed half keeps a client from hammering a server that is down;
// the random half keeps a room full of clients from all reconnecting in the
// same millisecond when it comes back (a thundering herd).
function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

// ---------------------------------------------------------------------------
// 2. Connectors: one per transport, all the same shape.
//
//   start(ctx, since, epoch, onEvent, onState) -> { stop(), send?(frame) }
//
//   ctx      { room, client, countRequest(), pollInterval() }
//   since    the last id the pane has (0: the whole retained history)
//   epoch    the room life that id belongs to (undefined if not known yet)
//   onEvent  called with each parsed event object, in order
//   onState  called with "connecting", "open", "retrying" (SSE only), and
//            finally "closed" (with a reason) when the connection is dead.
//            After "closed" or stop(), a connector calls nothing more; the
//            Pane decides when to start a new one.
// ---------------------------------------------------------------------------

// WebSocket: one socket, both directions. Every frame is one JSON event.
function startWebSocket(ctx, since, epoch, onEvent, onState) {
  let stopped = false;
  const socket = new WebSocket(wsUrl(withQuery(roomPath(ctx.room, 'ws'), { since, epoch })));
  ctx.countRequest();                    // the HTTP upgrade request
  onState('connecting');
  socket.onopen = () => { if (!stopped) onState('open'); };
  socket.onmessage = (frame) => { if (!stopped) onEvent(JSON.parse(frame.data)); };
  // 'error' is always followed by 'close', so only 'close' is handled.
  socket.onclose = (e) => {
    if (stopped) return;
    stopped = true;
    onState('closed', e.code === 1006 ? 'connection lost' : `closed ${e.code} ${e.reason}`.trim());
  };
  return {
    stop() {
      stopped = true;
      socket.close(1000, 'client switched');
    },
    // The one transport that can send on the connection it receives on.
    send(frame) {
      if (socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(frame));
      return true;
    },
  };
}

// Server-Sent Events: a long HTTP response the browser parses for us.
//
// EventSource reconnects by itself and sends the last `id:` it saw as the
// Last-Event-ID header, which the server honours over `since`: that is SSE's
// whole resume protocol, and we let the browser use it. But the browser
// replays the same URL, so the `epoch` in it is the one we opened with. Once
// the stream has told us the room is in another life (hello/reset with a
// different epoch), or when the browser has given up (readyState CLOSED, as
// after a server restart), or keeps failing, we close it and let the Pane
// reconnect with a fresh since+epoch and its exponential backoff.
function startSse(ctx, since, epoch, onEvent, onState) {
  let stopped = false;
  let failures = 0;
  let urlEpochIsCurrent = false;   // does the URL's epoch match the stream's life?
  const source = new EventSource(withQuery(roomPath(ctx.room, 'sse'), { since, epoch }));
  ctx.countRequest();
  onState('connecting');

  const stop = () => { stopped = true; source.close(); };
  const deliver = (e) => {
    if (stopped) return;
    const event = JSON.parse(e.data);
    if (event.type === 'hello') urlEpochIsCurrent = event.epoch === epoch;
    if (event.type === 'reset') urlEpochIsCurrent = false;
    onEvent(event);
  };
  source.onopen = () => { if (!stopped) { failures = 0; onState('open'); } };
  source.onmessage = deliver;                 // chat messages: the default event type
  for (const type of ['hello', 'presence', 'gap', 'reset']) source.addEventListener(type, deliver);
  source.onerror = () => {
    if (stopped) return;
    failures += 1;
    if (source.readyState === EventSource.CLOSED || !urlEpochIsCurrent || failures > 2) {
      stop();
      onState('closed', failures > 2 ? 'browser retries failed' : 'stream ended');
    } else {
      ctx.countRequest();                     // the browser's own retry
      onState('retrying', 'browser retry with Last-Event-ID');
    }
  };
  return { stop };
}

// Long and short polling: a loop of plain GETs. The server answers with
// {"messages":[...],"next":N,"epoch":"..","online":{..}} and, when due,
// "reset":true and "gap":{from,to}. The loop turns that body into the same
// events the streaming transports send, so the Pane cannot tell them apart.
//
// `client` is a stable id per pane: between two requests a poller has no
// connection, so presence counts it by this id rather than by socket.
function pollingConnector(kind) {
  return function startPolling(ctx, since, epoch, onEvent, onState) {
    let stopped = false;
    const abort = new AbortController();

    async function loop() {
      let cursor = since;
      let life = epoch;
      let first = true;
      onState('connecting');
      while (!stopped) {
        // The first long poll waits 1 s, not 25: in an idle room the pane
        // would otherwise say "connecting" for 25 s before learning the epoch.
        const wait = kind === 'poll' ? 0 : first ? 1 : LONG_POLL_WAIT;
        let body;
        try {
          ctx.countRequest();
          const url = withQuery(roomPath(ctx.room, 'poll'), { since: cursor, epoch: life, wait, client: ctx.client });
          const response = await fetch(url, { signal: abort.signal, cache: 'no-store' });
          body = await response.json();
          if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
        } catch (err) {
          if (!stopped) {
            stopped = true;
            onState('closed', err instanceof TypeError ? 'server unreachable' : err.message);
          }
          return;
        }
        if (stopped) return;
        if (first) {
          first = false;
          onEvent({ type: 'hello', epoch: body.epoch, latest: body.next });
          onState('open');
        }
        if (body.reset) onEvent({ type: 'reset', epoch: body.epoch, latest: body.next });
        if (body.gap) onEvent({ type: 'gap', from: body.gap.from, to: body.gap.to });
        for (const message of body.messages) onEvent(message);
        if (body.online) onEvent({ type: 'presence', online: body.online });
        cursor = body.next;
        life = body.epoch;
        // A short poller asks again after the interval whether or not
        // anything came; a long poller asks again at once (the server holds it).
        if (kind === 'poll') await sleep(ctx.pollInterval(), abort.signal);
      }
    }

    loop();
    return {
      stop() {
        stopped = true;
        abort.abort();   // ends a held long poll now, not in 25 s
      },
    };
  };
}

const CONNECTORS = {
  ws: startWebSocket,
  sse: startSse,
  longpoll: pollingConnector('longpoll'),
  poll: pollingConnector('poll'),
};

// ---------------------------------------------------------------------------
// 3. Pane: one view of the room over one transport at a time.
//
// The pane, not the connector, owns the cursor: `epoch` (which life of the
// room) and `lastId` (the largest id shown). Every (re)connection, and every
// switch of transport, resumes from it with ?since=lastId&epoch=epoch, and
// any message whose id is not above lastId is a duplicate and is dropped.
// So switching transport, or reconnecting, neither loses nor repeats a line.
// ---------------------------------------------------------------------------

class Pane {
  constructor(key, transport, page) {
    this.key = key;                    // "single", or a transport name
    this.transport = transport;
    this.page = page;                  // { room(), nick(), pollInterval(), onPresence() }
    this.client = `${key}-${randomId()}`;   // client_id prefix and poller id
    this.sendSeq = 0;
    this.running = false;
    this.handle = null;                // the live connector's { stop, send? }
    this.generation = 0;               // ignores callbacks from replaced connectors
    this.attempt = 0;                  // consecutive failed connections
    this.retryTimer = null;
    this.sentAt = new Map();           // client_id -> performance.now() at send
    this.queue = [];                   // received, waiting for the next frame to render
    this.frame = 0;

    const root = document.getElementById('pane-template').content.firstElementChild.cloneNode(true);
    root.dataset.pane = key;
    this.root = root;
    this.list = $('.messages', root);
    this.stateEl = $('.state', root);
    this.latencyEl = $('.latency', root);
    this.costEl = $('.cost', root);
    this.form = $('.compose', root);
    if (key === 'single') {
      this.form.remove();              // single mode uses the main #compose
    } else {
      this.form.addEventListener('submit', (e) => {
        e.preventDefault();
        const input = $('input', this.form);
        this.send(input.value).then((ok) => { if (ok) input.value = ''; });
      });
    }
    this.clear();
    this.showTransport();
  }

  // Forget the room: used at start and when the room changes.
  clear() {
    this.epoch = null;
    this.lastId = null;                // null: nothing seen yet, ask for history
    this.historyUpTo = 0;              // ids up to this came as history, not live
    this.counts = { messages: 0, requests: 0, dupes: 0 };
    this.latencies = [];
    this.sentAt.clear();
    this.queue = [];                   // nothing of the old room may still be drawn
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.list.replaceChildren();
    this.renderCost();
    this.latencyEl.textContent = '';
  }

  showTransport() {
    this.root.dataset.transport = this.transport;
    $('.name', this.root).textContent = LABELS[this.transport];
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.generation += 1;
    if (this.handle) this.handle.stop();
    this.handle = null;
    this.showState('stopped');
  }

  setTransport(transport) {
    if (transport === this.transport) return;
    const wasRunning = this.running;
    this.stop();
    const from = LABELS[this.transport];
    this.transport = transport;
    this.showTransport();
    const where = this.lastId === null ? 'from the start' : `after #${this.lastId}`;
    this.note(`Switched from ${from} to ${LABELS[transport]}: resuming ${where}`, 'switch');
    if (wasRunning) this.start();
  }

  connect() {
    const generation = ++this.generation;
    const current = (fn) => (...args) => { if (generation === this.generation) fn(...args); };
    const ctx = {
      room: this.page.room(),
      client: this.client,
      countRequest: () => { this.counts.requests += 1; this.renderCost(); },
      pollInterval: () => this.page.pollInterval(),
    };
    const since = this.lastId ?? 0;    // 0 = the room's retained history
    this.handle = CONNECTORS[this.transport](
      ctx, since, this.epoch ?? undefined,
      current((event) => this.onEvent(event)),
      current((state, detail) => this.onState(state, detail)),
    );
  }

  onState(state, detail) {
    if (state === 'open') this.attempt = 0;
    if (state !== 'closed') {
      this.showState(state, detail);
      return;
    }
    // The connection is dead: try again later, from the cursor we hold then.
    this.handle = null;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.showState('reconnecting', `in ${formatMs(delay)}${detail ? ` (${detail})` : ''}`);
    this.retryTimer = setTimeout(() => { if (this.running) this.connect(); }, delay);
  }

  showState(state, detail) {
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = state;
    this.stateEl.title = detail || '';
  }

  onEvent(event) {
    switch (event.type) {
      case 'message': return this.onMessage(event);
      case 'hello':
        // Adopt the epoch only on a first connection. On a resume, a hello
        // with another epoch is followed by a reset, which is what moves us.
        if (this.epoch === null) this.epoch = event.epoch;
        if (this.lastId === null) this.historyUpTo = event.latest;
        return;
      case 'reset':
        // A reset to the life we already follow is a stale URL talking (an
        // SSE retry that replays its first epoch): the dedupe drops the replay.
        if (event.epoch === this.epoch && this.lastId !== null) return;
        this.note('Server restarted: the room began a new life; catching up from #1', 'reset');
        this.epoch = event.epoch;
        this.lastId = 0;               // ids start again at 1; accept them all
        this.historyUpTo = 0;          // and they are news to us: show their latency
        return;
      case 'gap': {
        // A gap inside the history we asked for on joining is just old
        // history the server no longer keeps; past it, it is a real loss.
        const missed = event.to - event.from + 1;
        if (event.to <= this.historyUpTo) {
          this.note(`Older messages (#${event.from}–#${event.to}) are no longer kept by the server`, 'history');
        } else {
          this.note(`${missed} message${missed === 1 ? '' : 's'} missed (#${event.from}–#${event.to}): no longer kept by the server`, 'gap');
        }
        this.lastId = Math.max(this.lastId ?? 0, event.to);
        return;
      }
      case 'presence': return this.page.onPresence(event.online);
      case 'ack': return;              // the message itself follows like any other
      case 'error': return this.note(`Server said: ${event.error}`, 'error');
      default: return;                 // unknown events are ignored, so the server can add some
    }
  }

  onMessage(message) {
    const receivedAt = Date.now();
    if (this.lastId !== null && message.id <= this.lastId) {
      this.counts.dupes += 1;          // already shown: a resume overlapped
      this.renderCost();
      return;
    }
    this.lastId = message.id;
    this.counts.messages += 1;
    this.renderCost();
    // Receive latency: our clock minus the server's ts. The page and the
    // server share a clock when they run on the same machine, as in the
    // talk; across machines this includes their clock difference.
    const history = message.id <= this.historyUpTo;
    const latency = history ? null : receivedAt - message.ts;
    if (latency !== null) this.recordLatency(latency);
    this.enqueue({ message, latency });
  }

  recordLatency(ms) {
    this.latencies.push(ms);
    if (this.latencies.length > 50) this.latencies.shift();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    this.latencyEl.textContent = `last ${formatMs(ms)} · median ${formatMs(median)}`;
  }

  // Rendering is batched per animation frame: a catch-up of hundreds of
  // messages then costs one layout, not hundreds.
  enqueue(item) {
    this.queue.push(item);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  note(text, kind) {
    this.enqueue({ note: text, kind });
  }

  flush() {
    this.frame = 0;
    const list = this.list;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
    const shownAt = performance.now();
    const fragment = document.createDocumentFragment();
    for (const item of this.queue) {
      fragment.append(item.note !== undefined
        ? el('li', { class: `note ${item.kind}` }, item.note)
        : this.renderMessage(item.message, item.latency, shownAt));
    }
    this.queue = [];
    list.append(fragment);
    while (list.childElementCount > MAX_ITEMS) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  renderMessage(m, latency, shownAt) {
    const mine = this.sentAt.has(m.client_id);
    const meta = [];
    meta.push(el('span', { class: 'lat' }, latency === null ? 'history' : formatMs(latency)));
    if (mine) {
      // Send-to-display: from the click to this line being put on screen,
      // measured on the page's monotonic clock, so no clock skew applies.
      const rtt = shownAt - this.sentAt.get(m.client_id);
      this.sentAt.delete(m.client_id);
      meta.push(el('span', { class: 'rtt', title: 'from Send to shown here' }, `↺ ${formatMs(rtt)}`));
    }
    // Every piece of user data goes in as a text child of el(): never HTML.
    return el('li', { class: mine ? 'msg mine' : 'msg', 'data-id': m.id, 'data-epoch': this.epoch, 'data-user': m.user },
      el('span', { class: 'id' }, `#${m.id}`),
      el('span', { class: 'user' }, m.user),
      el('span', { class: 'text' }, m.text),
      el('span', { class: 'meta' }, ...meta));
  }

  renderCost() {
    const { messages, requests, dupes } = this.counts;
    const perMessage = messages ? (requests / messages).toFixed(2) : '–';
    this.costEl.replaceChildren(
      el('span', { 'data-k': 'messages' }, `${messages} msgs`),
      // A WebSocket upgrade and an SSE GET are HTTP requests too: over a
      // healthy stream this stays at 1 while the messages climb.
      el('span', { 'data-k': 'requests' }, `${requests} requests`),
      el('span', { 'data-k': 'per-message' }, `${perMessage} req/msg`),
      el('span', { 'data-k': 'dupes' }, `${dupes} dupes dropped`),
    );
  }

  // The send path: a WebSocket pane sends on its socket (answered by an
  // `ack` frame); every other pane, and a WS pane whose socket is down,
  // POSTs. Resolves true when the server took (or will take) the message.
  async send(text) {
    const user = this.page.nick();
    if (!user) { this.note('Pick a nickname first', 'error'); return false; }
    if (!text.trim()) return false;
    const client_id = `${this.client}-${++this.sendSeq}`;
    this.sentAt.set(client_id, performance.now());
    if (this.handle && this.handle.send && this.handle.send({ type: 'send', user, text, client_id })) {
      return true;
    }
    try {
      const response = await fetch(roomPath(this.page.room(), 'messages'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user, text, client_id }),
      });
      if (response.ok) return true;
      const body = await response.json().catch(() => ({}));
      this.note(`Not sent: ${body.error || `HTTP ${response.status}`}`, 'error');
    } catch {
      this.note('Not sent: the server is unreachable', 'error');
    }
    this.sentAt.delete(client_id);
    return false;
  }
}

// ---------------------------------------------------------------------------
// 4. Totals strip: the server's own counters, GET /stats every 2 s.
// These count every byte on the sockets of each transport, headers and
// framing included, which is the honest cost of a message. /stats requests
// themselves are charged to "other", so watching does not skew the numbers.
// ---------------------------------------------------------------------------

function startTotals(container) {
  const cells = {};
  for (const t of [...TRANSPORTS, 'send']) {
    cells[t] = el('span', { class: 'total', 'data-transport': t },
      el('b', {}, t === 'send' ? 'POST' : SHORT_LABELS[t]),
      el('span', { class: 'bpm', title: 'wire bytes out per message delivered' }, '–'),
      el('span', { class: 'rpm', title: 'HTTP requests per message delivered' }, '–'));
    container.append(cells[t]);
  }
  const number = (x, digits) => (x === null || x === undefined ? '–' : Number(x).toFixed(digits));

  async function refresh() {
    try {
      const response = await fetch('/stats', { cache: 'no-store' });
      const { transports } = await response.json();
      for (const t of TRANSPORTS) {
        const s = transports[t];
        $('.bpm', cells[t]).textContent = `${number(s.per_message.wire_bytes_out_per_message, 0)} B/msg`;
        $('.rpm', cells[t]).textContent = `${number(s.per_message.requests_per_message, 2)} req/msg`;
        cells[t].title = `${s.connections_open} connections open, ${s.delivered} messages delivered`;
      }
      // Sends deliver nothing, so per-message figures are per request here.
      const send = transports.send;
      $('.bpm', cells.send).textContent = `${send.requests} sent`;
      $('.rpm', cells.send).textContent = send.requests
        ? `${Math.round(send.wire_bytes_in / send.requests)} B in/req` : '';
      container.dataset.state = 'ok';
    } catch {
      container.dataset.state = 'unreachable';   // e.g. while the server restarts
    }
  }
  refresh();
  setInterval(refresh, 2000);
}

// ---------------------------------------------------------------------------
// 5. Page wiring
// ---------------------------------------------------------------------------

function main() {
  const params = new URLSearchParams(location.search);
  const nickInput = $('#nick');
  const roomInput = $('#room');
  const transportSelect = $('#transport');
  const intervalInput = $('#interval');
  const modeButton = $('#mode');

  let room = ROOM_NAME.test(params.get('room') || '') ? params.get('room') : 'lobby';
  let mode = params.get('mode') === 'side' ? 'side' : 'single';
  const firstTransport = TRANSPORTS.includes(params.get('transport')) ? params.get('transport') : 'ws';

  nickInput.value = loadNick();
  roomInput.value = room;
  transportSelect.value = firstTransport;

  let online = {};
  const page = {
    room: () => room,
    nick: () => nickInput.value.trim(),
    pollInterval: () => Number(intervalInput.value),
    onPresence(counts) {
      if (JSON.stringify(counts) === JSON.stringify(online)) return;
      online = counts;
      const total = TRANSPORTS.reduce((sum, t) => sum + (counts[t] || 0), 0);
      $('#online').textContent = `${room}: ${total} online (${TRANSPORTS.map((t) => `${t} ${counts[t] || 0}`).join(' · ')})`;
    },
  };

  // One pane for single mode, four for side by side. Only the visible ones
  // are connected; a hidden pane keeps its cursor and resumes when shown.
  const single = new Pane('single', firstTransport, page);
  const side = TRANSPORTS.map((t) => new Pane(t, t, page));
  const container = $('#panes');
  container.append(single.root, ...side.map((p) => p.root));

  function applyMode() {
    document.body.dataset.mode = mode;
    modeButton.dataset.mode = mode;
    modeButton.textContent = mode === 'single' ? 'Side by side' : 'Single pane';
    single.root.hidden = mode !== 'single';
    for (const pane of side) pane.root.hidden = mode !== 'side';
    if (mode === 'single') { side.forEach((p) => p.stop()); single.start(); }
    else { single.stop(); side.forEach((p) => p.start()); }
    updateUrl();
  }

  function updateUrl() {
    const url = withQuery(location.pathname, {
      room: room === 'lobby' ? undefined : room,
      mode: mode === 'side' ? 'side' : undefined,
      transport: single.transport === 'ws' ? undefined : single.transport,
    });
    history.replaceState(null, '', url);   // a reload keeps the presenter's setup
  }

  modeButton.addEventListener('click', () => {
    mode = mode === 'single' ? 'side' : 'single';
    applyMode();
  });

  transportSelect.addEventListener('change', () => {
    single.setTransport(transportSelect.value);
    updateUrl();
  });

  roomInput.addEventListener('change', () => {
    const wanted = roomInput.value.trim();
    if (!ROOM_NAME.test(wanted)) {
      roomInput.setCustomValidity('Letters, digits, _ and -, at most 64');
      roomInput.reportValidity();
      return;
    }
    roomInput.setCustomValidity('');
    if (wanted === room) return;
    room = wanted;
    online = {};
    $('#online').textContent = '';
    for (const pane of [single, ...side]) {
      const wasRunning = pane.running;
      pane.stop();
      pane.clear();
      if (wasRunning) pane.start();
    }
    updateUrl();
  });

  nickInput.addEventListener('change', () => saveNick(nickInput.value.trim()));

  const showInterval = () => {
    $('#interval-value').textContent = `${(Number(intervalInput.value) / 1000).toFixed(intervalInput.value % 1000 ? 2 : 1)} s`;
  };
  intervalInput.addEventListener('input', showInterval);
  showInterval();

  $('#compose').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#text');
    single.send(input.value).then((ok) => { if (ok) input.value = ''; });
    input.focus();
  });

  applyMode();
  startTotals($('#totals'));
}

function loadNick() {
  try {
    const saved = localStorage.getItem('skyrocket.nick');
    if (saved) return saved;
  } catch { /* storage can be disabled; a fresh nick is fine */ }
  const nick = `guest-${randomId().slice(0, 4)}`;
  saveNick(nick);
  return nick;
}

function saveNick(nick) {
  try { localStorage.setItem('skyrocket.nick', nick); } catch { /* see loadNick */ }
}

main();

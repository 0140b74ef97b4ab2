/*
 * Skyrocket demo page: the same chat room over WebSocket, Server-Sent Events,
 * long polling and short polling. The wire interface is CONTRACT.md.
 *
 * How this file is laid out, top to bottom:
 *   1. helpers          tiny DOM and URL helpers (user text only ever goes
 *                       in as text nodes, never as HTML)
 *   1b. protocol        which HTTP version the browser used (Resource Timing)
 *   2. connectors       one per transport, all the same shape:
 *                         start(ctx, since, epoch, onEvent, onState) -> { stop(), send? }
 *                       A connector turns its transport's framing into plain
 *                       event objects ({type:"message"|"hello"|"reset"|"gap"|
 *                       "presence"|"ack"|"error", ...}) and reports its state;
 *                       it does NOT retry, dedupe or render.
 *   3. Pane             owns one cursor (epoch + last id), dedupes by id,
 *                       renders, reconnects with backoff, and sends.
 *   4. totals strip     GET /stats every 2 s: bars per transport, and the
 *                       same figures handed to each pane.
 *   4b. wire panel      GET /rooms/{room}/wire every 1 s while open: the exact
 *                       bytes of the last delivery, decoded.
 *   5. page wiring      nick, room, transport switch, mode toggle.
 *
 * Hooks for browser tests (stable; extend, do not rename):
 *   #nick                    nickname input (remembered in localStorage)
 *   #room                    room input; change event (or Enter) switches room
 *   #transport               <select> ws | sse | longpoll | poll  (single mode)
 *   #interval                short-poll interval in ms, range 250..5000
 *   #mode                    button: click toggles single <-> side-by-side;
 *                            its data-mode and <body data-mode> say which is on
 *                            ("single" | "side" | "sse8")
 *   #sse8                    button: toggles the 8 x SSE mode (eight SSE panes,
 *                            to show HTTP/1.1's six connections per origin);
 *                            aria-pressed says whether it is on
 *   #conn-limit              8 x SSE: streams open and who waits; data-limit
 *                            "hit" (panes wait for an HTTP/1.1 connection) |
 *                            "none" (all eight open over h2) | "pending"
 *   #text, #send, #compose   the main compose box (single mode)
 *   #online                  presence: who is in the room, per transport
 *   #totals                  the /stats strip; one [data-transport] cell per
 *                            transport with .bpm (wire bytes out / message)
 *                            and .rpm (requests / message), and bars
 *                            .tbar.bytes i / .tbar.reqs i whose style.width
 *                            is the share of the largest transport; a
 *                            [data-transport="send"] cell has no bars
 *   #wire-toggle             button: opens/closes #wire; data-open and
 *                            aria-pressed "true"|"false"; <body data-wire>
 *                            "open"|"closed". Escape also closes.
 *   #wire                    the wire panel (hidden when closed); its
 *                            data-transport = the view shown
 *   #wire-transport          <select> ws | sse | longpoll | poll | handshake
 *   #wire-status             "capture armed ..." and the sample's time;
 *                            data-state armed | unreachable | loading
 *   #wire-send               button: POSTs a test message to the room
 *   #wire-tls                under HTTPS: what the capture shows (decrypted
 *                            HTTP/1.1, or decrypted HTTP/2 frames) and that
 *                            TLS records carry them on the wire;
 *                            data-h2 "yes" | "no"
 *   #wire-body               data-sample "yes" | "none"; data-http "h2" |
 *                            "http/1.1" (the sample's, when there is one);
 *                            inside it:
 *     .wire-empty            shown when no sample exists for the view yet
 *     .hexdump[data-len]     xxd-style dump, .hexline per 16 bytes, .off
 *                            offset; .hl = framing/headers, .hl2 = other
 *                            overhead (SSE field names, a poll's request)
 *     .frame-fields [data-field="fin"|"opcode"|"mask"|"payload_len"|"header_len"]
 *                            the decoded WebSocket frame header (dd b = value)
 *     .wiretext .eol         a visible \r\n / \n marker in HTTP text
 *     .accept[data-match]    handshake: Sec-WebSocket-Accept worked out;
 *                            .check is ✓ when computed == accept
 *     .h2-frames             an HTTP/2 sample's frames: one tr per frame
 *                            with data-dir request|response, data-type
 *                            (DATA, HEADERS, ...), data-stream, data-length
 *     .h2-headers            an HTTP/2 sample's request headers, decoded
 *                            (tr per header, td.name and td.value)
 *     #wire-handshake        button (handshake view): opens a throwaway
 *                            WebSocket so a handshake gets captured
 *   [data-pane="single"]     the single-mode pane; its data-transport says
 *                            which transport it currently uses
 *   [data-pane="ws"|"sse"|"longpoll"|"poll"]   the side-by-side panes
 *   [data-pane="sse-1".."sse-8"]  the 8 x SSE panes; data-waiting "yes" on a
 *                            pane whose stream has no connection to run on
 *   each pane:
 *     .proto                 the HTTP the browser used (section 1b): data-proto
 *                            "h2" | "http/1.1" | ...; data-source "request"
 *                            (this pane's own finished request), "page" (the
 *                            page's, until the request's entry exists),
 *                            "unknown" (a WebSocket on an h2 page), "none"
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
 *     .spark                 SVG latency sparkline of the last 30 messages
 *                            shown (log scale 1 ms..10 s, same in every
 *                            pane); data-count = bars; rect.mine = own
 *                            send (click to shown), rect.other = server
 *                            ts to shown; .spark-last = the newest value
 *     .wirecost [data-k]     server-wide per-message cost of the pane's
 *                            transport (all its clients, from /stats):
 *                            down, up (wire bytes), rpm (requests)
 *     .compose input, .compose button   per-pane send (side-by-side mode)
 *   #transport also offers "auto": the single pane tries ws, sse, longpoll,
 *                            poll in turn; its data-auto="yes", its
 *                            data-transport is the transport in use and
 *                            data-why says why; each fallback adds a
 *                            .note.switch line
 *   #netbar                  the network panel, hidden unless GET /network
 *                            answers; data-through "yes" when the page was
 *                            opened through the network's port
 *     button[data-fault]     rtt | bandwidth | idle | buffer | upgrade403 |
 *                            upgradedrop | drop (toggles, aria-pressed says
 *                            which are on), drop-now, clear
 *     #net-status            the conditions (data-spec) and counters
 *   URL: ?room=NAME&mode=single|side|sse8&transport=ws|sse|longpoll|poll|auto
 *        &wire=open opens the wire panel on load (read once, not kept)
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
// Auto mode (section 3b): the order tried, how long a new connection has to
// send its hello, and failed reconnects in a row before leaving a transport
// that worked.
const AUTO_ORDER = ['ws', 'sse', 'longpoll', 'poll'];
const AUTO_PROBE_MS = 4000;
const AUTO_RETRIES = 2;
const BACKOFF_CAP_MS = 5000;

const SPARK_BARS = 30;                          // messages in a pane's latency sparkline
const SPARK_MAX_MS = 10000;                     // top of its (log) scale
const WIRE_POLL_MS = 1000;                      // how often the open wire panel asks again
const STATS_POLL_MS = 2000;
const SSE_PANES = 8;                            // panes of the 8 x SSE mode
const HTTP1_CONNECTIONS_PER_ORIGIN = 6;         // what browsers allow over HTTP/1.1

const $ = (selector, root = document) => root.querySelector(selector);

// Builds an element. Children that are strings become Text nodes (that is
// what Node.append does with a string), so a message like
// <img src=x onerror=alert(1)> is shown as those characters, never parsed.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  // null/undefined children are skipped (Node.append would write "null"),
  // so optional parts can be written inline as `cond ? el(...) : null`.
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// The same for SVG, which lives in its own XML namespace: an element made
// with createElement('rect') would be an unknown HTML element and not draw.
function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
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
// 1b. Which HTTP the browser used (Resource Timing).
//
// Over HTTPS a browser speaks HTTP/2 when the server offers it (ALPN), and
// then every request to the origin shares one connection; over HTTP/1.1
// each request in flight holds a connection of its own, six at most per
// origin. The page cannot choose, but it can look: a finished request
// leaves a PerformanceResourceTiming entry whose nextHopProtocol says "h2"
// or "http/1.1". What it cannot see is shown as such, never guessed:
//   - an entry is written when a response *ends*: a poll's at once, an SSE
//     stream's only when the stream closes. Until then an SSE pane shows
//     the page's own protocol (the navigation entry), marked "page": over
//     h2 the browser puts the stream on that same connection;
//   - a WebSocket leaves no entry at all (see Pane.watchProtocol).
// ---------------------------------------------------------------------------

// The protocol of the page itself: "h2", "http/1.1", or "" if unknown.
function pageProtocol() {
  const nav = performance.getEntriesByType('navigation')[0];
  return (nav && nav.nextHopProtocol) || '';
}

// Requests in flight whose entry we wait for: absolute URL -> callbacks,
// oldest first (eight SSE panes ask for the very same URL). A request that
// is aborted leaves no entry, so the map is bounded: the oldest goes.
const protocolWaiters = new Map();
const MAX_PROTOCOL_WAITERS = 64;

function whenProtocolKnown(url, callback) {
  const key = new URL(url, location.href).href;
  const waiting = protocolWaiters.get(key) || [];
  waiting.push(callback);
  protocolWaiters.set(key, waiting);
  if (protocolWaiters.size > MAX_PROTOCOL_WAITERS) protocolWaiters.delete(protocolWaiters.keys().next().value);
}

// One observer for the page: it sees every entry, even once the browser's
// timing buffer (250 entries) is full, which a short poller fills in minutes.
if (typeof PerformanceObserver === 'function') {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const waiting = protocolWaiters.get(entry.name);
      if (!waiting) continue;
      const callback = waiting.shift();
      if (!waiting.length) protocolWaiters.delete(entry.name);
      callback(entry.nextHopProtocol);
    }
  }).observe({ type: 'resource' });
}

// ---------------------------------------------------------------------------
// 2. Connectors: one per transport, all the same shape.
//
//   start(ctx, since, epoch, onEvent, onState) -> { stop(), send?(frame) }
//
//   ctx      { room, client, countRequest(url), pollInterval() }
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
  const url = wsUrl(withQuery(roomPath(ctx.room, 'ws'), { since, epoch }));
  const socket = new WebSocket(url);
  ctx.countRequest(url);                 // the HTTP upgrade request
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
  const url = withQuery(roomPath(ctx.room, 'sse'), { since, epoch });
  const source = new EventSource(url);
  ctx.countRequest(url);
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
      ctx.countRequest(url);                  // the browser's own retry
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
          const url = withQuery(roomPath(ctx.room, 'poll'), { since: cursor, epoch: life, wait, client: ctx.client });
          ctx.countRequest(url);
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
  constructor(key, transport, page, label) {
    this.key = key;                    // "single", a transport name, or "sse-1".."sse-8"
    this.label = label;                // a name for the head instead of the transport's
    this.auto = transport === 'auto';  // auto mode: this.transport is the one in use
    this.transport = this.auto ? AUTO_ORDER[0] : transport;
    this.resetAuto();
    this.page = page;                  // { room(), nick(), pollInterval(), onPresence() }
    this.client = `${key}-${randomId()}`;   // client_id prefix and poller id
    this.sendSeq = 0;
    this.running = false;
    this.handle = null;                // the live connector's { stop, send? }
    this.generation = 0;               // ignores callbacks from replaced connectors
    this.attempt = 0;                  // consecutive failed connections
    this.retryTimer = null;
    this.sentAt = new Map();           // client_id -> performance.now() at send
    this.wsSends = [];                 // sends on this socket awaiting ack or error, oldest first
    this.queue = [];                   // received, waiting for the next frame to render
    this.frame = 0;

    const root = document.getElementById('pane-template').content.firstElementChild.cloneNode(true);
    root.dataset.pane = key;
    this.root = root;
    this.list = $('.messages', root);
    this.stateEl = $('.state', root);
    this.protoEl = $('.proto', root);
    this.latencyEl = $('.latency', root);
    this.costEl = $('.cost', root);
    this.sparkEl = $('.spark', root);
    this.sparkLastEl = $('.spark-last', root);
    this.wirecostEl = $('.wirecost', root);
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
    this.shown = [];                   // sparkline: [{ms, mine}] of the last SPARK_BARS messages shown
    this.sentAt.clear();
    this.queue = [];                   // nothing of the old room may still be drawn
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.list.replaceChildren();
    this.renderCost();
    this.latencyEl.textContent = '';
    this.drawSpark();
  }

  showTransport() {
    this.root.dataset.transport = this.transport;
    this.root.dataset.auto = this.auto ? 'yes' : 'no';
    this.root.dataset.why = this.auto ? this.autoWhy : '';
    const name = $('.name', this.root);
    name.textContent = this.auto ? `Auto: ${LABELS[this.transport]}` : this.label || LABELS[this.transport];
    name.title = this.auto ? this.autoWhy : '';
    // The sparkline and the server-wide figures belong to the transport,
    // not to the pane: start them afresh, and show the new transport's
    // figures now rather than at the next /stats refresh.
    this.shown = [];
    this.drawSpark();
    this.renderWireCost(this.page.lastStats && this.page.lastStats[this.transport]);
    this.showProtocol('', 'none', '');
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
    clearTimeout(this.probeTimer);
    this.generation += 1;
    if (this.handle) this.handle.stop();
    this.handle = null;
    this.settleWsSends(false);
    this.showState('stopped');
  }

  // Resolves every WebSocket send still waiting for its answer: when the
  // socket is gone, none will come, so the text stays in the input.
  settleWsSends(ok) {
    for (const resolve of this.wsSends.splice(0)) resolve(ok);
  }

  // What the transport switch shows: "auto", or the transport.
  choice() {
    return this.auto ? 'auto' : this.transport;
  }

  setTransport(choice) {
    if (choice === this.choice()) return;
    const wasRunning = this.running;
    this.stop();
    const from = this.auto ? 'auto' : LABELS[this.transport];
    this.auto = choice === 'auto';
    const transport = this.auto ? AUTO_ORDER[0] : choice;
    this.transport = transport;
    this.resetAuto();
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
      countRequest: (url) => { this.counts.requests += 1; this.renderCost(); this.watchProtocol(url); },
      pollInterval: () => this.page.pollInterval(),
    };
    const since = this.lastId ?? 0;    // 0 = the room's retained history
    this.handle = CONNECTORS[this.transport](
      ctx, since, this.epoch ?? undefined,
      current((event) => this.onEvent(event)),
      current((state, detail) => this.onState(state, detail)),
    );
    if (this.auto) {
      // A connection proves itself by its hello, not by "open": a buffering
      // proxy lets an SSE response head through and holds the events.
      clearTimeout(this.probeTimer);
      this.probeTimer = setTimeout(current(() => {
        this.generation += 1;          // the stalled connection says nothing more
        if (this.handle) this.handle.stop();
        this.onState('closed', `no hello within ${AUTO_PROBE_MS / 1000} s`);
      }), AUTO_PROBE_MS);
    }
  }

  onState(state, detail) {
    if (state === 'open') this.attempt = 0;
    if (state !== 'closed') {
      this.showState(state, detail);
      return;
    }
    // The connection is dead: try again later, from the cursor we hold then.
    this.handle = null;
    this.settleWsSends(false);
    if (this.auto && this.autoFailed(detail)) return;
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.showState('reconnecting', `in ${formatMs(delay)}${detail ? ` (${detail})` : ''}`);
    this.retryTimer = setTimeout(() => { if (this.running) this.connect(); }, delay);
  }

  // ---- 3b. Auto mode: WebSocket, then SSE, then long polling, then short
  // polling, as the Socket.IO and Centrifugo clients do. A transport that
  // never worked (no hello) is left at its first failure; one that worked
  // is retried, and left after AUTO_RETRIES failures in a row. The cursor
  // is the pane's, so a fallback resumes like any reconnect: nothing lost,
  // nothing doubled. The pane never moves back up the list: it settles.
  resetAuto() {
    clearTimeout(this.probeTimer);
    this.autoWorked = false;           // has this.transport delivered a hello?
    this.autoFailures = 0;             // failures in a row on this.transport
    this.autoWhy = this.auto ? `${LABELS[this.transport]}: first choice` : '';
  }

  // A connection failed in auto mode. True when the pane moved to the next
  // transport (and connected it); false to reconnect as usual.
  autoFailed(detail) {
    clearTimeout(this.probeTimer);
    this.autoFailures += 1;
    const next = AUTO_ORDER[AUTO_ORDER.indexOf(this.transport) + 1];
    if (!next || (this.autoWorked && this.autoFailures <= AUTO_RETRIES)) return false;
    const why = `${LABELS[this.transport]} failed: ${detail || 'closed'}`;
    this.note(`Auto: ${why}; trying ${LABELS[next]}, resuming after #${this.lastId ?? 0}`, 'switch');
    this.transport = next;
    this.resetAuto();
    this.autoWhy = `${LABELS[next]}, because ${why}`;
    this.showTransport();
    this.attempt = 0;
    this.connect();
    return true;
  }

  showState(state, detail) {
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = state;
    this.stateEl.title = detail || '';
    if (this.page.onPaneState) this.page.onPaneState(this);
  }

  // What the browser used for this pane's request to `url` (section 1b).
  // Until the request's own timing entry exists, the page's protocol is
  // shown, marked as the page's; a WebSocket never gets an entry.
  watchProtocol(url) {
    const page = pageProtocol();
    const transport = this.transport;
    if (this.transport === 'ws') {
      // Over an HTTP/1.1 page the origin offered this browser only HTTP/1.1,
      // so the socket is an HTTP/1.1 Upgrade. Over h2, Chromium may run it
      // on the page's connection (RFC 8441, which this server allows) or
      // open an HTTP/1.1 one: nothing in the page says which.
      if (page === 'h2') {
        this.showProtocol('h2 or http/1.1', 'unknown', 'A WebSocket has no Resource Timing entry: the page cannot see whether the browser opened it as a stream of its HTTP/2 connection (RFC 8441 extended CONNECT) or with an HTTP/1.1 Upgrade.');
      } else {
        this.showProtocol(page || '?', 'page', 'A WebSocket has no Resource Timing entry; the page came over this protocol, so the socket is an HTTP/1.1 Upgrade.');
      }
      return;
    }
    if (this.protoEl.dataset.source !== 'request') {
      this.showProtocol(page || '?', 'page', 'The page\'s own protocol (navigation entry): this request has not ended, and Resource Timing writes an entry only when a response ends. An open SSE stream gets one when it closes.');
    }
    // Not tied to this connection: an SSE stream's entry comes when it has
    // ended and been replaced, and is still a fact about this pane.
    whenProtocolKnown(url, (proto) => {
      if (transport !== this.transport) return;
      this.showProtocol(proto || '?', 'request', `nextHopProtocol of this pane's last finished request (Resource Timing): ${proto || 'not given'}`);
    });
  }

  showProtocol(proto, source, why) {
    this.protoEl.dataset.proto = proto;
    this.protoEl.dataset.source = source;
    this.protoEl.textContent = source === 'page' ? `${proto} (page)` : proto;
    this.protoEl.title = why;
  }

  onEvent(event) {
    switch (event.type) {
      case 'message': return this.onMessage(event);
      case 'hello':
        if (this.auto) {
          clearTimeout(this.probeTimer);
          this.autoWorked = true;
          this.autoFailures = 0;
        }
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
      // The server answers each send frame on the socket, in order, with
      // an ack or an error: either settles the oldest send waiting.
      case 'ack': return this.wsSends.shift()?.(true);   // the message follows like any other
      case 'error':
        this.wsSends.shift()?.(false);
        return this.note(`Server said: ${event.error}`, 'error');
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
    const shownWall = Date.now();
    const fragment = document.createDocumentFragment();
    let drawn = false;
    for (const item of this.queue) {
      if (item.note !== undefined) {
        fragment.append(el('li', { class: `note ${item.kind}` }, item.note));
        continue;
      }
      fragment.append(this.renderMessage(item.message, item.latency, shownAt, shownWall));
      drawn = true;
    }
    this.queue = [];
    list.append(fragment);
    if (drawn) this.drawSpark();
    while (list.childElementCount > MAX_ITEMS) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  renderMessage(m, latency, shownAt, shownWall) {
    const mine = this.sentAt.has(m.client_id);
    const meta = [];
    meta.push(el('span', { class: 'lat' }, latency === null ? 'history' : formatMs(latency)));
    if (mine) {
      // Send-to-display: from the click to this line being put on screen,
      // measured on the page's monotonic clock, so no clock skew applies.
      const rtt = shownAt - this.sentAt.get(m.client_id);
      this.sentAt.delete(m.client_id);
      meta.push(el('span', { class: 'rtt', title: 'from Send to shown here' }, `↺ ${formatMs(rtt)}`));
      this.pushSpark(rtt, true);
    } else if (latency !== null) {
      // Someone else's message: we never saw their click, so the nearest
      // "send" we know is the server's receive time (ts). Measured at
      // display, not at receipt, so it includes the wait for a frame.
      this.pushSpark(shownWall - m.ts, false);
    }
    // Every piece of user data goes in as a text child of el(): never HTML.
    return el('li', { class: mine ? 'msg mine' : 'msg', 'data-id': m.id, 'data-epoch': this.epoch, 'data-user': m.user },
      el('span', { class: 'id' }, `#${m.id}`),
      el('span', { class: 'user' }, m.user),
      el('span', { class: 'text' }, m.text),
      el('span', { class: 'meta' }, ...meta));
  }

  pushSpark(ms, mine) {
    this.shown.push({ ms: Math.max(0, ms), mine });
    if (this.shown.length > SPARK_BARS) this.shown.shift();
  }

  // The latency sparkline, drawn by hand as SVG rects: one bar per message,
  // newest on the right. The scale is logarithmic and the same in every
  // pane (1 ms at the bottom, 10 s at the top, faint lines at 10 ms, 100 ms
  // and 1 s), so side by side a WebSocket's 2 ms and a short poll's 600 ms
  // are both visible and can be compared by eye: a per-pane linear scale
  // would draw both as the same tall bars.
  drawSpark() {
    const svg = this.sparkEl;
    const W = 300, H = 30;
    const y = (ms) => H - H * (Math.log10(Math.min(Math.max(ms, 1), SPARK_MAX_MS)) / Math.log10(SPARK_MAX_MS));
    const nodes = [];
    for (const line of [10, 100, 1000]) {
      nodes.push(svgEl('line', { x1: 0, x2: W, y1: y(line), y2: y(line), class: 'grid' }));
    }
    const slot = W / SPARK_BARS;
    const offset = SPARK_BARS - this.shown.length;       // right-aligned: newest at the right edge
    this.shown.forEach(({ ms, mine }, i) => {
      const top = Math.min(y(ms), H - 2);                // even 0 ms gets a visible stub
      const rect = svgEl('rect', { x: (offset + i) * slot + 1, y: top, width: slot - 2, height: H - top, class: mine ? 'mine' : 'other' });
      rect.append(svgEl('title', {}, `${formatMs(ms)}${mine ? ' (own send: click to shown)' : ' (server ts to shown)'}`));
      nodes.push(rect);
    });
    svg.replaceChildren(...nodes);
    svg.dataset.count = String(this.shown.length);
    const last = this.shown[this.shown.length - 1];
    this.sparkLastEl.textContent = last ? formatMs(last.ms) : '';
  }

  // The transport's cost per delivered message, from /stats. These count
  // every client of this transport on the server, not only this pane: the
  // browser cannot see a WebSocket's or an SSE stream's bytes, the server can.
  renderWireCost(s) {
    const label = `server-wide, all ${SHORT_LABELS[this.transport]} clients`;
    const pm = s && s.per_message;
    const bytes = (x) => (x === null || x === undefined ? '–' : `${Math.round(x)} B`);
    this.wirecostEl.title = `GET /stats, ${label}: wire bytes per message delivered, down (server to client) and up (client to server), and HTTP requests per message`;
    this.wirecostEl.replaceChildren(
      el('span', { 'data-k': 'down', title: 'wire bytes server→client per message delivered' }, `↓${bytes(pm && pm.wire_bytes_out_per_message)}`),
      el('span', { 'data-k': 'up', title: 'wire bytes client→server per message delivered' }, `↑${bytes(pm && pm.wire_bytes_in_per_message)}`),
      el('span', { 'data-k': 'rpm' }, `${pm && pm.requests_per_message !== null && pm.requests_per_message !== undefined ? Number(pm.requests_per_message).toFixed(2) : '–'} req`),
      el('span', { class: 'scope' }, `per msg, ${label}`),
    );
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
  // `ack` or an `error` frame); every other pane, and a WS pane whose
  // socket is down, POSTs. Resolves true once the server took the message,
  // false when it refused it (the caller then keeps the text in the input).
  async send(text) {
    const user = this.page.nick();
    if (!user) { this.note('Pick a nickname first', 'error'); return false; }
    if (!text.trim()) return false;
    const client_id = `${this.client}-${++this.sendSeq}`;
    this.sentAt.set(client_id, performance.now());
    if (this.handle && this.handle.send && this.handle.send({ type: 'send', user, text, client_id })) {
      const ok = await new Promise((resolve) => this.wsSends.push(resolve));
      if (!ok) this.sentAt.delete(client_id);
      return ok;
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
//
// Each transport gets two bars, wire bytes out per message and requests per
// message, each scaled to the largest of the four: a bar reads from the back
// of the room where a column of digits does not. The digits stay beside the
// bars for whoever is close enough. The same /stats answer is handed to the
// panes (onStats) for their per-pane server-wide figures, so there is one
// poll, not five.
// ---------------------------------------------------------------------------

function startTotals(container, onStats) {
  const cells = {};
  const bar = (kind) => el('span', { class: `tbar ${kind}` }, el('i'));
  container.append(el('span', { class: 'totals-key' },
    el('b', {}, 'Per message, server-wide'),
    el('span', { class: 'key-bytes' }, 'bytes out'),
    el('span', { class: 'key-reqs' }, 'requests')));
  for (const t of TRANSPORTS) {
    cells[t] = el('span', { class: 'total', 'data-transport': t },
      el('b', {}, SHORT_LABELS[t]),
      bar('bytes'),
      el('span', { class: 'bpm', title: 'wire bytes out per message delivered' }, '–'),
      bar('reqs'),
      el('span', { class: 'rpm', title: 'HTTP requests per message delivered' }, '–'));
    container.append(cells[t]);
  }
  // Sends deliver nothing, so they get no bar: a count and bytes per request.
  cells.send = el('span', { class: 'total', 'data-transport': 'send' },
    el('b', {}, 'POST'),
    el('span', { class: 'bpm', title: 'messages sent with POST /rooms/{room}/messages' }, '–'),
    el('span', { class: 'rpm', title: 'wire bytes in per POST request' }, ''));
  container.append(cells.send);

  const present = (x) => x !== null && x !== undefined;
  const setBar = (cell, kind, value, max) => {
    // width as a share of the largest; an unknown value draws no bar at all.
    const share = present(value) && max > 0 ? Math.max(value / max, 0.01) : 0;
    $(`.tbar.${kind} i`, cell).style.width = `${(share * 100).toFixed(1)}%`;
  };

  // One request at a time: with eight SSE streams over HTTP/1.1 a /stats
  // request waits for a connection that never frees, and a new one every
  // 2 s would pile up behind it.
  let inFlight = false;
  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch('/stats', { cache: 'no-store' });
      const { transports } = await response.json();
      const pm = (t) => transports[t].per_message;
      const maxBytes = Math.max(0, ...TRANSPORTS.map((t) => pm(t).wire_bytes_out_per_message || 0));
      const maxReqs = Math.max(0, ...TRANSPORTS.map((t) => pm(t).requests_per_message || 0));
      for (const t of TRANSPORTS) {
        const s = transports[t];
        const bytes = s.per_message.wire_bytes_out_per_message;
        const reqs = s.per_message.requests_per_message;
        $('.bpm', cells[t]).textContent = present(bytes) ? `${Math.round(bytes)} B` : '– B';
        $('.rpm', cells[t]).textContent = present(reqs) ? `${Number(reqs).toFixed(2)} req` : '– req';
        setBar(cells[t], 'bytes', bytes, maxBytes);
        setBar(cells[t], 'reqs', reqs, maxReqs);
        cells[t].title = `${LABELS[t]}, all clients on this server: ${s.connections_open} connections open, `
          + `${s.delivered} messages delivered, ${s.requests} requests, `
          + `${s.wire_bytes_out} bytes out, ${s.wire_bytes_in} bytes in`;
      }
      const send = transports.send;
      $('.bpm', cells.send).textContent = `${send.requests} sent`;
      $('.rpm', cells.send).textContent = send.requests
        ? `${Math.round(send.wire_bytes_in / send.requests)} B in/req` : '';
      container.dataset.state = 'ok';
      onStats(transports);
    } catch {
      container.dataset.state = 'unreachable';   // e.g. while the server restarts
    } finally {
      inFlight = false;
    }
  }
  refresh();
  setInterval(refresh, STATS_POLL_MS);
}

// ---------------------------------------------------------------------------
// 4b. Wire panel: the exact bytes of the last delivery on one transport.
//
// GET /rooms/{room}/wire answers with a sample per transport (only those
// that delivered something while watched). Asking is also what arms the
// capture, for 30 s, so the panel asks every second while it is open and
// capture stops by itself soon after it closes: nobody pays for it then.
//
// Everything from the server goes in as text (el() children, textContent):
// the bytes are arbitrary, and a chat message is user input.
// ---------------------------------------------------------------------------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';   // RFC 6455 section 1.3
const OPCODES = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

// "81 7e 00 ca" -> Uint8Array [0x81, 0x7e, 0x00, 0xca]. The hex is the
// ground truth; the *_text fields are a lossy UTF-8 reading of the same bytes.
function hexToBytes(hex) {
  const parts = (hex || '').trim().split(/\s+/).filter(Boolean);
  return Uint8Array.from(parts, (h) => parseInt(h, 16));
}

// Byte offset of a string index: the hex dump counts bytes, JS strings
// count UTF-16 units, and a message may hold "é" (2 bytes) or emoji (4).
const byteLength = (text) => new TextEncoder().encode(text).length;

// An xxd-style dump: offset, 16 bytes (a gap after 8), and their ASCII.
// `marks` is a list of [from, to, class] byte ranges to highlight (framing
// and headers, as opposed to payload). One <div> per line, one <span> per
// run of same-class bytes, so a few KiB of hex stays a few hundred nodes.
function hexDump(bytes, marks = []) {
  const classOf = (i) => { for (const [from, to, cls] of marks) if (i >= from && i < to) return cls; return ''; };
  const width = Math.max(4, bytes.length.toString(16).length);
  const block = el('div', { class: 'hexdump', 'data-len': bytes.length });
  for (let line = 0; line < bytes.length; line += 16) {
    const row = el('div', { class: 'hexline' }, el('span', { class: 'off' }, line.toString(16).padStart(width, '0')));
    const hexRuns = [];
    const asciiRuns = [];
    for (let i = line; i < Math.min(line + 16, bytes.length); i++) {
      const cls = classOf(i);
      const sep = i === line ? ' ' : i === line + 8 ? '  ' : ' ';
      const hex = bytes[i].toString(16).padStart(2, '0');
      const ch = bytes[i] >= 0x20 && bytes[i] < 0x7f ? String.fromCharCode(bytes[i]) : '.';
      // The separator between two bytes of the same class joins their run;
      // otherwise it stays unmarked, so a highlight covers digits only.
      const prev = hexRuns[hexRuns.length - 1];
      if (prev && prev.cls === cls) prev.text += sep + hex;
      else {
        if (prev && prev.cls === '') prev.text += sep; else hexRuns.push({ cls: '', text: sep });
        hexRuns.push({ cls, text: hex });
      }
      const lastAscii = asciiRuns[asciiRuns.length - 1];
      if (lastAscii && lastAscii.cls === cls) lastAscii.text += ch; else asciiRuns.push({ cls, text: ch });
    }
    const filled = Math.min(16, bytes.length - line);
    const pad = ' '.repeat((16 - filled) * 3 + (filled <= 8 ? 1 : 0) + 2);
    for (const run of hexRuns) row.append(run.cls ? el('span', { class: run.cls }, run.text) : run.text);
    row.append(pad);
    for (const run of asciiRuns) row.append(el('span', { class: `asc ${run.cls}`.trim() }, run.text));
    block.append(row);
  }
  return block;
}

// HTTP text with its line ends made visible: "\r\n" and a lone "\n" are
// shown as marker glyphs and then really broken, so the reader sees both
// the layout and the exact bytes that make it.
function visibleText(text, cls = 'wiretext') {
  const pre = el('pre', { class: cls });
  for (const part of text.split(/(\r\n|\n|\r)/)) {
    if (part === '\r\n') pre.append(el('span', { class: 'eol crlf' }, '\\r\\n'), '\n');
    else if (part === '\n') pre.append(el('span', { class: 'eol lf' }, '\\n'), '\n');
    else if (part === '\r') pre.append(el('span', { class: 'eol cr' }, '\\r'));
    else if (part) pre.append(part);
  }
  return pre;
}

// Where an HTTP message's head ends: the blank line "\r\n\r\n".
function headEnd(bytes) {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i + 4;
  }
  return bytes.length;
}

const section = (title, ...children) => el('section', { class: 'wire-part' }, el('h3', {}, title), ...children);
const clockTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false }) + `.${String(ms % 1000).padStart(3, '0')}`;

const WIRE_VIEWS = {
  // A WebSocket frame: a 2-14 byte header, then the payload as is.
  ws(sample) {
    const bytes = hexToBytes(sample.response_hex);
    const f = sample.frame || {};
    const headerLen = f.header_len || 0;
    const payload = new TextDecoder().decode(bytes.slice(headerLen));
    const len7 = bytes.length > 1 ? bytes[1] & 0x7f : 0;
    const lengthHow = len7 === 126 ? '7-bit field says 126: the real length is in the next 2 bytes'
      : len7 === 127 ? '7-bit field says 127: the real length is in the next 8 bytes'
        : 'fits in the 7-bit field';
    const bits = (b) => (b === undefined ? '' : b.toString(2).padStart(8, '0'));
    const field = (name, value, why) => el('div', { class: 'field', 'data-field': name },
      el('dt', {}, name), el('dd', {}, el('b', {}, String(value)), ' ', why));
    const fields = el('dl', { class: 'frame-fields' },
      field('fin', f.fin ? 1 : 0, f.fin ? 'final fragment: the whole message is in this frame' : 'more fragments follow'),
      field('opcode', `0x${(f.opcode ?? 0).toString(16)}`, f.opcode_name || OPCODES[f.opcode] || 'reserved'),
      field('mask', f.masked ? 1 : 0, f.masked ? 'masked (client to server frames must be)' : 'not masked: server to client frames never are'),
      field('payload_len', f.payload_len, lengthHow),
      field('header_len', `${headerLen} B`, `of ${bytes.length} B on the wire: ${bytes.length ? Math.round((100 * headerLen) / bytes.length) : 0}% framing`));
    return [
      el('div', { class: 'wire-col' },
        section('Frame header, decoded',
          el('pre', { class: 'bits', title: 'first two bytes in binary: FIN RSV1-3 opcode | MASK payload-length' },
            el('span', { class: 'hl' }, `${bits(bytes[0]).slice(0, 1)} ${bits(bytes[0]).slice(1, 4)} ${bits(bytes[0]).slice(4)}`),
            '   ',
            el('span', { class: 'hl' }, `${bits(bytes[1]).slice(0, 1)} ${bits(bytes[1]).slice(1)}`),
            '\nF RSV opcode   M length'),
          fields),
        section(`Payload: ${bytes.length - headerLen} B of UTF-8 text`, el('pre', { class: 'wiretext payload' }, payload))),
      el('div', { class: 'wire-col' },
        section(`Frame bytes (${bytes.length} B; header highlighted: ${f.header_hex || ''})`, hexDump(bytes, [[0, headerLen, 'hl']]))),
    ];
  },

  // An SSE event inside an HTTP/1.1 chunk: "<size in hex>\r\n<event>\r\n".
  sse(sample) {
    const bytes = hexToBytes(sample.response_hex);
    const text = sample.response_text || '';
    const sizeLine = /^([0-9A-Fa-f]+)\r\n/.exec(text);
    const marks = [];
    const notes = [];
    if (sizeLine) {
      const size = parseInt(sizeLine[1], 16);
      marks.push([0, sizeLine[0].length, 'hl'], [bytes.length - 2, bytes.length, 'hl']);
      notes.push(el('li', {}, el('code', {}, `${sizeLine[1]}\\r\\n`),
        ` chunk size in hex: 0x${sizeLine[1]} = ${size} bytes follow (HTTP/1.1 chunked encoding, since the stream has no Content-Length)`));
      notes.push(el('li', {}, el('code', {}, '\\r\\n'), ' at the end closes the chunk'));
    }
    // The event's own framing: the "id: N\n", "data: " and the blank line.
    const data = text.indexOf('data: ');
    if (data >= 0) {
      const from = byteLength(text.slice(0, data));
      marks.push([sizeLine ? sizeLine[0].length : 0, from + 6, 'hl2']);
      const end = text.indexOf('\n\n', data);
      if (end >= 0) marks.push([byteLength(text.slice(0, end)), byteLength(text.slice(0, end + 2)), 'hl2']);
      notes.push(el('li', {}, el('code', {}, 'id:'), ' lets a reconnecting browser resume (Last-Event-ID); ',
        el('code', {}, 'data:'), ' carries the message; a blank line ends the event'));
    }
    return [
      el('div', { class: 'wire-col' },
        section(`Event as sent (${bytes.length} B), line ends shown`, visibleText(text)),
        section('What the framing is', el('ul', { class: 'wire-notes' }, ...notes))),
      el('div', { class: 'wire-col' },
        section('Bytes (chunk framing and event fields highlighted)', hexDump(bytes, marks))),
    ];
  },

  longpoll: (sample) => httpExchange(sample),
  poll: (sample) => httpExchange(sample),

  // The opening handshake: an HTTP/1.1 GET with Upgrade, answered by 101.
  handshake(sample, extra) {
    const a = sample.accept || {};
    const match = a.computed && a.accept && a.computed === a.accept;
    const row = (label, value, cls) => el('div', { class: `accept-row ${cls || ''}`.trim() },
      el('span', { class: 'accept-label' }, label), el('code', {}, value || '–'));
    const sha = el('code', { class: 'sha1' }, 'computing…');
    const browser = el('span', { class: 'browser-check' });
    // Work it out again here, in the browser, when it lets us: WebCrypto
    // exists only on secure origins (https, or localhost).
    if (a.key && globalThis.crypto && crypto.subtle) {
      crypto.subtle.digest('SHA-1', new TextEncoder().encode(a.key + (a.guid || WS_GUID))).then((digest) => {
        const d = new Uint8Array(digest);
        sha.textContent = [...d].map((b) => b.toString(16).padStart(2, '0')).join(' ');
        const b64 = btoa(String.fromCharCode(...d));
        browser.textContent = b64 === a.accept ? '✓ this browser gets the same' : `✗ this browser gets ${b64}`;
        browser.dataset.match = String(b64 === a.accept);
      }, () => { sha.textContent = '(20 bytes)'; });
    } else {
      sha.textContent = '(20 bytes; WebCrypto needs https or localhost to show them)';
    }
    return [
      el('div', { class: 'wire-col' },
        section(`Request: browser to server (${sample.request_len || 0} B)`, visibleText(sample.request_text || '')),
        section(`Response: server to browser (${sample.response_len || 0} B)`, visibleText(sample.response_text || ''))),
      el('div', { class: 'wire-col' },
        section('Sec-WebSocket-Accept, worked out',
          el('div', { class: 'accept', 'data-match': String(Boolean(match)) },
            row('Sec-WebSocket-Key', a.key),
            row('+ GUID', a.guid || WS_GUID),
            el('div', { class: 'accept-row' }, el('span', { class: 'accept-label' }, '→ SHA-1'), sha),
            row('→ base64', a.computed),
            row('= Sec-WebSocket-Accept', a.accept, 'result'),
            el('div', { class: 'accept-verdict' },
              el('span', { class: 'check' }, match ? '✓' : '✗'),
              match ? ' the server proved it read this handshake' : ' mismatch', ' ', browser),
            el('p', { class: 'wire-why' }, 'Why: a server that is not speaking WebSocket cannot produce this value, so '
              + 'a plain HTTP server or a cache cannot be mistaken for one. It is not security: the key is not secret.'))),
        extra),
    ];
  },
};

// An HTTP/2 sample (any view): the stream's frames as the server read and
// wrote them, decrypted. Each frame is a 9-byte header (24-bit length,
// type, flags, 31-bit stream id) and its payload; the request's header
// block is HPACK, decoded by the server and listed here, the response's is
// shown as bytes (sample.response_headers_note says why).
function h2View(kind, sample, extra) {
  const response = hexToBytes(sample.response_hex);
  const request = hexToBytes(sample.request_hex);
  const frames = sample.frames || { request: [], response: [] };
  const headerMarks = (list) => list.map((f) => [f.offset, f.offset + 9, 'hl']);
  const flags = (f) => `0x${f.flags.toString(16).padStart(2, '0')}${f.flag_names.length ? ` ${f.flag_names.join(' ')}` : ''}`;
  const rows = [];
  for (const dir of ['request', 'response']) {
    for (const f of frames[dir] || []) {
      rows.push(el('tr', { 'data-dir': dir, 'data-type': f.type, 'data-stream': f.stream, 'data-length': f.length, title: `9-byte header: ${f.header_hex}` },
        el('td', { title: dir === 'request' ? 'browser to server' : 'server to browser' }, dir === 'request' ? '↑' : '↓'),
        el('td', {}, `${f.type} 0x${f.type_byte.toString(16)}`),
        el('td', {}, flags(f)),
        el('td', {}, String(f.stream)),
        el('td', {}, `${f.length} B`)));
    }
  }
  const table = el('table', { class: 'h2-frames' },
    el('thead', {}, el('tr', {}, ...['', 'type', 'flags', 'stream', 'length'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows));
  const headers = el('table', { class: 'h2-headers' },
    el('tbody', {}, ...(sample.request_headers || []).map(([name, value]) =>
      el('tr', {}, el('td', { class: 'name' }, name), el('td', { class: 'value' }, value)))));
  // What the DATA frames carry: an SSE event, a WebSocket frame (first
  // byte 0x81: FIN + text) or a poll's JSON body, as text.
  const decoder = new TextDecoder();
  const payload = (frames.response || []).filter((f) => f.type === 'DATA')
    .map((f) => decoder.decode(response.slice(f.offset + 9, f.offset + 9 + f.payload_len))).join('');
  const responseHeaders = (frames.response || []).some((f) => f.type === 'HEADERS');
  const carried = kind === 'ws' ? 'DATA payload: one WebSocket frame (header, then the message), as text'
    : kind === 'sse' ? 'DATA payload: the SSE event, no chunk framing (HTTP/2 frames the body itself)'
      : 'DATA payload: the response body';
  const headersFrom = request.length ? `from ${request.length} B of HPACK` : '(only :method and :path were kept)';
  return [
    el('div', { class: 'wire-col' },
      section(`HTTP/2 stream ${sample.stream}: its frames`, table),
      responseHeaders ? el('p', { class: 'wire-why' }, sample.response_headers_note || '') : null,
      payload ? section(carried, visibleText(payload, 'wiretext payload')) : null,
      section(`Request headers, decoded ${headersFrom}`, headers),
      extra),
    el('div', { class: 'wire-col' },
      section(`Server's frames (${response.length} B; 9-byte frame headers highlighted)`, hexDump(response, headerMarks(frames.response || []))),
      request.length ? section(`Request frames (${request.length} B)`, hexDump(request, headerMarks(frames.request || [])))
        : el('p', { class: 'wire-hint' }, 'Request frames not captured: this stream began before capture was armed.')),
  ];
}

// A whole poll: the request and the HTTP response, head and body.
function httpExchange(sample) {
  const response = hexToBytes(sample.response_hex);
  const request = hexToBytes(sample.request_hex);
  const head = headEnd(response);
  const body = response.length - head;
  // A long poll is read when it arrives and answered up to 25 s later: if
  // it arrived before the panel armed capture, only the answer was seen.
  const requestView = request.length
    ? visibleText(sample.request_text || '')
    : el('p', { class: 'wire-hint' }, 'Not captured: this request reached the server before capture was armed. The next one will be.');
  return [
    el('div', { class: 'wire-col' },
      section(`Request (${request.length} B, all of it overhead)`, requestView),
      section(`Response (${response.length} B: head ${head} B, body ${body} B)`, visibleText(sample.response_text || ''))),
    el('div', { class: 'wire-col' },
      section('Response bytes (status line and headers highlighted)', hexDump(response, [[0, head, 'hl']])),
      request.length ? section('Request bytes', hexDump(request, [[0, request.length, 'hl2']])) : null),
  ];
}

function startWirePanel(page) {
  const panel = $('#wire');
  const toggle = $('#wire-toggle');
  const select = $('#wire-transport');
  const status = $('#wire-status');
  const body = $('#wire-body');
  let timer = 0;
  let last = null;          // the last /wire answer
  let drawn = '';           // what the body shows now: room, transport and sample time

  // Under HTTPS the capture is of the decrypted bytes, above TLS: said
  // here, with what TLS adds on the wire, rather than left for the reader
  // to assume the dump is what crossed the socket.
  function explainTls() {
    const note = $('#wire-tls');
    note.hidden = location.protocol !== 'https:';
    if (note.hidden) return;
    const h2 = pageProtocol() === 'h2';
    note.dataset.h2 = h2 ? 'yes' : 'no';
    note.textContent = h2
      ? 'HTTPS over HTTP/2: these are the decrypted HTTP/2 frames of one stream (each a 9-byte header: length, type, '
        + 'flags, stream id; then its payload). On the wire each is inside TLS records (5-byte record header, '
        + '16-byte AEAD tag, 1 byte of content type under TLS 1.3): /stats counts those under "connection".'
      : 'HTTPS: these are the decrypted HTTP/1.1 bytes. On the wire each write is a TLS record around them '
        + '(5-byte header, 16-byte tag, 1 byte of content type): /stats counts those under "connection".';
  }

  function setOpen(open) {
    explainTls();
    panel.hidden = !open;
    toggle.dataset.open = String(open);
    toggle.setAttribute('aria-pressed', String(open));
    document.body.dataset.wire = open ? 'open' : 'closed';
    clearTimeout(timer);
    if (open) { drawn = ''; refresh(); }
  }

  async function refresh() {
    clearTimeout(timer);
    const room = page.room();
    try {
      const response = await fetch(roomPath(room, 'wire'), { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      last = await response.json();
      status.dataset.state = 'armed';
      draw();
    } catch {
      status.dataset.state = 'unreachable';
      status.textContent = 'server unreachable';
    }
    if (!panel.hidden) timer = setTimeout(refresh, WIRE_POLL_MS);
  }

  // Redraw only when there is something new to show, so a presenter who
  // scrolled the hex dump is not thrown back to the top every second.
  function draw() {
    const kind = select.value;
    panel.dataset.transport = kind;
    const sample = last && last.room === page.room() ? last[kind] : undefined;
    const key = `${page.room()} ${kind} ${sample ? sample.at : 'none'}`;
    if (last) {
      const age = sample ? ` · sample ${clockTime(sample.at)} (${Math.max(0, Math.round((Date.now() - sample.at) / 1000))} s ago)` : '';
      status.textContent = `capture armed ${Math.round(last.watching_for_ms / 1000)} s${age}`;
      status.title = `GET ${roomPath(last.room, 'wire')} every second while this panel is open; each one arms capture in room ${last.room} for ${Math.round(last.watching_for_ms / 1000)} s more`;
    }
    if (key === drawn) return;
    drawn = key;
    const handshakeButton = el('button', { id: 'wire-handshake', type: 'button' }, 'Open a fresh WebSocket now');
    handshakeButton.addEventListener('click', openThrowawaySocket);
    const extra = kind === 'handshake'
      ? el('p', { class: 'wire-hint' }, 'A handshake is captured when a WebSocket opens while this panel is open. ', handshakeButton)
      : null;
    if (!sample) {
      body.dataset.sample = 'none';
      delete body.dataset.http;
      const why = kind === 'handshake'
        ? [extra]
        : [`No ${LABELS[kind]} delivery captured yet in this room. Capture starts when this panel opens: `,
          `send a message (button above) while a ${LABELS[kind]} client is connected`,
          page.mode() === 'single' && page.transport() !== kind ? ` (this page's single pane uses ${LABELS[page.transport()]}: switch it, or go side by side).` : '.'];
      body.replaceChildren(el('p', { class: 'wire-empty' }, ...why));
      return;
    }
    body.dataset.sample = 'yes';
    body.dataset.http = sample.http || 'http/1.1';
    const view = sample.http === 'h2' ? h2View(kind, sample, extra) : WIRE_VIEWS[kind](sample, extra);
    body.replaceChildren(...view.filter(Boolean));
  }

  // A WebSocket that opens, gets its hello and closes: its handshake is the
  // sample. The panes' own sockets opened before the panel did.
  function openThrowawaySocket() {
    const socket = new WebSocket(wsUrl(roomPath(page.room(), 'ws')));
    socket.onmessage = () => socket.close(1000, 'handshake shown');
    socket.onopen = () => setTimeout(refresh, 200);
    setTimeout(() => socket.close(), 5000);
  }

  toggle.addEventListener('click', () => setOpen(panel.hidden));
  select.addEventListener('change', draw);
  $('#wire-send').addEventListener('click', async () => {
    const user = page.nick() || 'wire';
    await fetch(roomPath(page.room(), 'messages'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user, text: `wire test ${clockTime(Date.now())}` }),
    }).catch(() => {});
    // Long and short polls deliver a little later: look again soon.
    setTimeout(refresh, 300);
  });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !panel.hidden) setOpen(false); });
  return { setOpen, roomChanged() { drawn = ''; if (!panel.hidden) refresh(); } };
}

// ---------------------------------------------------------------------------
// 5. Page wiring
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// 4c. Network panel: the network in between (GET/PUT /network), shown when
// the server has one. One button per fault, each a toggle; the faults apply
// to every connection through the network's port, so the page says whether
// it was opened through it (and links there when it was not).
// ---------------------------------------------------------------------------

const FAULTS = [
  { key: 'rtt', label: 'RTT 300 ms', on: { rtt_ms: 300 }, off: { rtt_ms: 0 },
    active: (c) => c.up_ms + c.down_ms > 0, title: '150 ms each way on every chunk, order kept' },
  { key: 'bandwidth', label: '32 KiB/s', on: { bandwidth: 32768 }, off: { bandwidth: 0 },
    active: (c) => c.bandwidth > 0, title: 'a bandwidth cap per connection and direction' },
  { key: 'idle', label: 'Idle timeout 20 s', on: { idle_ms: 20000 }, off: { idle_ms: 0 },
    active: (c) => c.idle_ms > 0,
    title: 'cuts connections quiet for 20 s: SSE keepalives (every 15 s) keep a stream alive; WebSocket pings (25 s) and 25 s long polls are too slow' },
  { key: 'buffer', label: 'Buffering proxy', on: { buffer_kib: 16 }, off: { buffer_kib: 0 },
    active: (c) => c.buffer_kib > 0, title: 'holds each response body until it ends or 16 KiB pile up: SSE stalls, polls pass' },
  { key: 'upgrade403', label: 'No Upgrade (403)', on: { upgrade: '403' }, off: { upgrade: 'allow' },
    active: (c) => c.upgrade === '403', title: 'answers WebSocket upgrades with 403 Forbidden' },
  { key: 'upgradedrop', label: 'No Upgrade (reset)', on: { upgrade: 'drop' }, off: { upgrade: 'allow' },
    active: (c) => c.upgrade === 'drop', title: 'resets connections that ask for a WebSocket upgrade' },
  { key: 'drop', label: 'Drop every 10 s', on: { drop_ms: 10000 }, off: { drop_ms: 0 },
    active: (c) => c.drop_ms > 0, title: 'resets every connection every 10 s, like a phone changing networks' },
];
const NETWORK_POLL_MS = 2000;

function startNetworkPanel(bar) {
  const status = $('#net-status', bar);
  const where = $('.net-where', bar);
  const buttons = new Map();
  let conditions = null;

  async function call(method, path, body) {
    // Through the network, a drop may cut this very request: one retry.
    for (let tries = 0; tries < 2; tries += 1) {
      try {
        const response = await fetch(path, {
          method,
          cache: 'no-store',
          headers: body ? { 'Content-Type': 'application/json' } : {},
          body: body ? JSON.stringify(body) : undefined,
        });
        const answer = await response.json();
        if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
        return answer;
      } catch (err) {
        if (tries === 1 || !(err instanceof TypeError)) throw err;
      }
    }
    return null;
  }

  function show(state) {
    conditions = state.conditions;
    bar.hidden = false;
    const port = (state.addr || '').split(':').pop();
    const through = location.port === port;
    bar.dataset.through = through ? 'yes' : 'no';
    if (through) {
      where.replaceChildren('Through the network in between:');
    } else {
      const url = `${location.protocol}//${location.hostname}:${port}${location.pathname}${location.search}`;
      where.replaceChildren('Faults apply to ', el('a', { href: url }, `port ${port}`), ':');
    }
    for (const fault of FAULTS) {
      const on = fault.active(conditions);
      buttons.get(fault.key).setAttribute('aria-pressed', String(on));
    }
    const c = state.counters;
    status.dataset.spec = state.spec;
    status.textContent = `${state.spec} · ${c.open} open · cut: idle ${c.idle_cuts}, drops ${c.drop_cuts} · upgrades refused ${c.upgrades_refused}`
      + (c.held ? ` · ${c.held} B held` : '');
  }

  async function change(path, method, body) {
    try {
      show(await call(method, path, body));
    } catch (err) {
      status.textContent = `Not changed: ${err.message}`;
    }
  }

  for (const fault of FAULTS) {
    const button = el('button', { type: 'button', 'data-fault': fault.key, 'aria-pressed': 'false', title: fault.title }, fault.label);
    button.addEventListener('click', () => {
      const on = button.getAttribute('aria-pressed') === 'true';
      change('/network', 'PUT', on ? fault.off : fault.on);
    });
    buttons.set(fault.key, button);
  }
  const dropNow = el('button', { type: 'button', 'data-fault': 'drop-now', title: 'reset every connection through the network now' }, 'Drop now');
  dropNow.addEventListener('click', () => change('/network/drop', 'POST'));
  const clear = el('button', { type: 'button', 'data-fault': 'clear', title: 'a clean network again' }, 'Clear');
  clear.addEventListener('click', () => change('/network', 'PUT', { reset: true }));
  $('.net-buttons', bar).append(...buttons.values(), dropNow, clear);

  async function refresh() {
    try {
      show(await call('GET', '/network'));
    } catch {
      // 404: no network in between on this server; keep the bar hidden.
      if (conditions === null) return;
    }
    setTimeout(refresh, NETWORK_POLL_MS);
  }
  refresh();
}

function main() {
  const params = new URLSearchParams(location.search);
  const nickInput = $('#nick');
  const roomInput = $('#room');
  const transportSelect = $('#transport');
  const intervalInput = $('#interval');
  const modeButton = $('#mode');
  const sse8Button = $('#sse8');

  let room = ROOM_NAME.test(params.get('room') || '') ? params.get('room') : 'lobby';
  let mode = ['side', 'sse8'].includes(params.get('mode')) ? params.get('mode') : 'single';
  const firstTransport = [...TRANSPORTS, 'auto'].includes(params.get('transport')) ? params.get('transport') : 'ws';

  nickInput.value = loadNick();
  roomInput.value = room;
  transportSelect.value = firstTransport;

  let online = {};
  let single = null;
  let eight = [];
  const page = {
    lastStats: null,                     // the latest /stats "transports", for panes that switch
    mode: () => mode,
    transport: () => (single ? single.transport : AUTO_ORDER[0]),
    room: () => room,
    nick: () => nickInput.value.trim(),
    pollInterval: () => Number(intervalInput.value),
    onPaneState: () => showConnectionLimit(),
    onPresence(counts) {
      if (JSON.stringify(counts) === JSON.stringify(online)) return;
      online = counts;
      const total = TRANSPORTS.reduce((sum, t) => sum + (counts[t] || 0), 0);
      $('#online').textContent = `${room}: ${total} online (${TRANSPORTS.map((t) => `${t} ${counts[t] || 0}`).join(' · ')})`;
    },
  };

  // One pane for single mode, four for side by side, eight SSE panes for
  // the connection-limit demo. Only the visible ones are connected; a
  // hidden pane keeps its cursor and resumes when shown.
  single = new Pane('single', firstTransport, page);
  const side = TRANSPORTS.map((t) => new Pane(t, t, page));
  eight = Array.from({ length: SSE_PANES }, (_, i) => new Pane(`sse-${i + 1}`, 'sse', page, `SSE ${i + 1}`));
  const panesOf = { single: [single], side, sse8: eight };
  const all = [single, ...side, ...eight];
  const container = $('#panes');
  container.append(...all.map((p) => p.root));

  function applyMode() {
    document.body.dataset.mode = mode;
    modeButton.dataset.mode = mode;
    modeButton.textContent = mode === 'side' ? 'Single pane' : 'Side by side';
    sse8Button.setAttribute('aria-pressed', String(mode === 'sse8'));
    const shown = panesOf[mode];
    // One live region only: the side-by-side panes show the same messages,
    // and a live region on each made a screen reader read every one four
    // times. The first visible pane announces.
    for (const pane of all) {
      pane.root.hidden = !shown.includes(pane);
      pane.list.removeAttribute('aria-live');
      if (!shown.includes(pane)) pane.stop();
    }
    shown[0].list.setAttribute('aria-live', 'polite');
    // In order: over HTTP/1.1 the first six get the connections.
    for (const pane of shown) pane.start();
    showConnectionLimit();
    updateUrl();
  }

  // 8 x SSE: says how many streams are open and, over HTTP/1.1 with six
  // open, that the others wait for a connection and why. Worked out again
  // on every pane state change, so it follows the panes without a timer.
  function showConnectionLimit() {
    const box = $('#conn-limit');
    box.hidden = mode !== 'sse8';
    const open = eight.filter((p) => p.running && p.stateEl.dataset.state === 'open');
    const waiting = eight.filter((p) => p.running && p.stateEl.dataset.state === 'connecting');
    const proto = pageProtocol();
    // Over HTTP/1.1 a stream that has not opened while six others hold a
    // connection each is waiting for a seventh the browser will not make.
    const limited = mode === 'sse8' && proto !== 'h2' && open.length >= HTTP1_CONNECTIONS_PER_ORIGIN;
    for (const pane of eight) {
      const stalled = limited && waiting.includes(pane);
      pane.root.dataset.waiting = stalled ? 'yes' : 'no';
      if (stalled && pane.stateEl.textContent !== 'waiting') {
        pane.stateEl.textContent = 'waiting';
        pane.stateEl.title = 'No connection yet: the browser has six open to this origin, each held by an SSE stream';
      }
    }
    if (mode !== 'sse8') return;
    const names = (panes) => panes.map((p) => p.label.replace('SSE ', '')).join(', ');
    const via = proto === 'h2' ? 'HTTP/2' : proto ? proto.toUpperCase() : 'an unknown protocol';
    let text = `${open.length} of ${eight.length} SSE streams open; the page came over ${via}. `;
    if (limited && waiting.length) {
      box.dataset.limit = 'hit';
      text += `Pane${waiting.length === 1 ? '' : 's'} ${names(waiting)} ${waiting.length === 1 ? 'is' : 'are'} waiting for a connection: `
        + `over HTTP/1.1 a browser opens at most ${HTTP1_CONNECTIONS_PER_ORIGIN} connections to one origin, and each open SSE stream keeps one. `
        + 'Sends and /stats from this page wait in the same queue. Over HTTP/2 (--tls) all eight share one connection.';
    } else if (proto === 'h2' && open.length === eight.length) {
      box.dataset.limit = 'none';
      text += 'All eight are streams of one HTTP/2 connection: no per-origin connection limit applies.';
    } else {
      box.dataset.limit = 'pending';
    }
    box.textContent = text;
  }

  function updateUrl() {
    const url = withQuery(location.pathname, {
      room: room === 'lobby' ? undefined : room,
      mode: mode === 'single' ? undefined : mode,
      transport: single.choice() === 'ws' ? undefined : single.choice(),
    });
    history.replaceState(null, '', url);   // a reload keeps the presenter's setup
  }

  modeButton.addEventListener('click', () => {
    mode = mode === 'side' ? 'single' : 'side';
    applyMode();
  });

  sse8Button.addEventListener('click', () => {
    mode = mode === 'sse8' ? 'single' : 'sse8';
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
    for (const pane of all) {
      const wasRunning = pane.running;
      pane.stop();
      pane.clear();
      if (wasRunning) pane.start();
    }
    wire.roomChanged();
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
  startNetworkPanel($('#netbar'));
  const wire = startWirePanel(page);
  if (params.get('wire') === 'open') wire.setOpen(true);
  startTotals($('#totals'), (transports) => {
    page.lastStats = transports;
    for (const pane of all) pane.renderWireCost(transports[pane.transport]);
  });
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

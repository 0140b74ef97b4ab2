/*
 * Skyrocket slides: moving through the deck the server rendered from
 * slides/*.md (src/slides/). No build step, no dependencies, works offline.
 *
 * Keys (any view; ignored with Ctrl, Alt or Cmd held):
 *   → ↓ Space PageDown n j     next slide
 *   ← ↑ Shift+Space PageUp p k  previous slide
 *   Home / End                  first / last slide
 *   12 Enter                    slide 12 (digits, then Enter)
 *   f                           fullscreen on or off
 *   b or .                      black screen on or off (clickers send "." too)
 *   t                           presenter view: restart the timer
 * Touch: swipe left or right. The URL follows: /slides#12 is slide 12, and
 * editing the hash moves the deck.
 *
 * Views:
 *   /slides          one slide at a time, as large as the window, 16:9.
 *   /slides?notes    presenter: the current slide, the next one, the speaker
 *                    notes and the lead's to-dos, the elapsed time (click it
 *                    to pause) and the clock. Open /slides on the projector
 *                    and /slides?notes on the laptop, in the same browser:
 *                    each follows the other (BroadcastChannel).
 *   /slides?check    walks the deck with the keys above, slide by slide, and
 *                    lists every slide whose content does not fit, so a
 *                    presenter can check a window size before the talk. The
 *                    result is also left in <body data-check> as JSON, which
 *                    tests/slides.rs reads from headless Chromium.
 *   Print to PDF: one slide per page (slides.css).
 *
 * Hooks (stable): section.slide (id = its number, data-title), .current,
 * .next (presenter), #pv-notes, #pv-count, #pv-timer, #pv-clock, #pv-fit,
 * body[data-check], #check-report.
 */
'use strict';

(function main() {
  const root = document.documentElement;
  const slides = Array.from(document.querySelectorAll('section.slide'));
  if (slides.length === 0) return;
  root.classList.add('js');

  const params = new URLSearchParams(location.search);
  const presenter = root.dataset.view === 'presenter';
  const checking = params.has('check');
  // Windows of the deck in one browser follow each other; a check run
  // must not drag the projector along, so it does not join.
  const channel = !checking && 'BroadcastChannel' in window
    ? new BroadcastChannel('skyrocket-slides')
    : null;
  let current = -1;

  const clamp = (i) => Math.max(0, Math.min(slides.length - 1, i));

  function indexFromHash() {
    const n = Number.parseInt(location.hash.slice(1), 10);
    return Number.isInteger(n) ? clamp(n - 1) : 0;
  }

  function show(index, { tell = true } = {}) {
    const i = clamp(index);
    if (i !== current) {
      slides.forEach((s) => s.classList.remove('current', 'next'));
      slides[i].classList.add('current');
      if (presenter && slides[i + 1]) slides[i + 1].classList.add('next');
      current = i;
      if (presenter) updatePresenter();
      if (tell && channel) channel.postMessage({ slide: i + 1 });
    }
    // replaceState: moving through slides should not fill the Back button.
    if (location.hash !== `#${i + 1}`) history.replaceState(null, '', `#${i + 1}`);
  }

  const step = (by) => show(current + by);

  // ---- keys and touch -------------------------------------------------------

  const NEXT = ['ArrowRight', 'ArrowDown', 'PageDown', 'n', 'j'];
  const PREVIOUS = ['ArrowLeft', 'ArrowUp', 'PageUp', 'p', 'k'];
  let typed = '';

  function onKey(e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.target instanceof Element && e.target.closest('input, textarea, select, [contenteditable]')) return;
    const key = e.key;
    if (/^[0-9]$/.test(key)) {
      typed += key;
      return;
    }
    const wanted = typed;
    typed = '';
    if (key === 'Enter' && wanted) show(Number(wanted) - 1);
    else if (NEXT.includes(key) || (key === ' ' && !e.shiftKey)) step(1);
    else if (PREVIOUS.includes(key) || (key === ' ' && e.shiftKey)) step(-1);
    else if (key === 'Home') show(0);
    else if (key === 'End') show(slides.length - 1);
    else if (key === 'f' || key === 'F') toggleFullscreen();
    else if (key === 'b' || key === 'B' || key === '.') root.classList.toggle('blackout');
    else if ((key === 't' || key === 'T') && presenter) timer.restart();
    else return;
    e.preventDefault();
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  }

  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', () => show(indexFromHash()));
  if (channel) channel.onmessage = (e) => {
    if (e.data && Number.isInteger(e.data.slide)) show(e.data.slide - 1, { tell: false });
  };

  let touchX = null;
  document.addEventListener('touchstart', (e) => { touchX = e.changedTouches[0].clientX; }, { passive: true });
  document.addEventListener('touchend', (e) => {
    if (touchX === null) return;
    const dx = e.changedTouches[0].clientX - touchX;
    touchX = null;
    if (Math.abs(dx) > 50) step(dx < 0 ? 1 : -1);
  });

  // ---- does a slide's content fit? ------------------------------------------

  // What runs past the slide: a block below the footer line or beyond the
  // right edge, or a code line wider than its box. '' when all fits.
  function misfit(slide) {
    const frame = slide.querySelector('.frame');
    const foot = frame.querySelector('.foot');
    const box = frame.getBoundingClientRect();
    const bottom = foot ? foot.getBoundingClientRect().top : box.bottom;
    const found = [];
    for (const el of frame.querySelectorAll('*')) {
      if (el.closest('.foot')) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      const name = el.tagName.toLowerCase();
      if (r.bottom > bottom + 1) found.push(`${name} ends ${Math.ceil(r.bottom - bottom)}px below the footer line`);
      if (r.right > box.right + 1) found.push(`${name} ends ${Math.ceil(r.right - box.right)}px past the right edge`);
    }
    for (const pre of frame.querySelectorAll('pre')) {
      if (pre.scrollWidth > pre.clientWidth + 1) found.push('a code line is wider than its box');
    }
    return [...new Set(found)].join('; ');
  }

  // ---- presenter ------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const minutes = (ms) => {
    const s = Math.floor(ms / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  };

  const timer = {
    started: Date.now(),
    pausedAt: null,
    restart() {
      this.started = Date.now();
      if (this.pausedAt !== null) this.pausedAt = this.started;
      this.draw();
    },
    toggle() {
      if (this.pausedAt === null) this.pausedAt = Date.now();
      else {
        this.started += Date.now() - this.pausedAt;
        this.pausedAt = null;
      }
      this.draw();
    },
    draw() {
      const button = $('pv-timer');
      if (!button) return;
      button.textContent = minutes((this.pausedAt ?? Date.now()) - this.started);
      button.toggleAttribute('data-paused', this.pausedAt !== null);
      $('pv-clock').textContent = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    },
  };

  function updatePresenter() {
    const slide = slides[current];
    const panel = $('pv-notes');
    const parts = ['.todo', '.notes'].map((sel) => slide.querySelector(`:scope > ${sel}`)).filter(Boolean);
    panel.replaceChildren(...parts.map((part) => part.cloneNode(true)));
    panel.scrollTop = 0;
    const next = slides[current + 1];
    $('pv-count').textContent = `${current + 1} / ${slides.length}` +
      (next ? ` · next: ${next.dataset.title}` : ' · last slide');
    let fit = $('pv-fit');
    if (!fit) {
      fit = document.createElement('span');
      fit.id = 'pv-fit';
      $('pv-count').after(fit);
    }
    // Measured after layout, so the warning is about what the audience sees.
    requestAnimationFrame(() => {
      const problem = misfit(slide);
      fit.textContent = problem ? `does not fit: ${problem}` : '';
    });
  }

  if (presenter) {
    $('pv-timer').addEventListener('click', () => timer.toggle());
    timer.draw();
    setInterval(() => timer.draw(), 500);
  }

  // ---- /slides?check ------------------------------------------------------------

  function check() {
    const press = (key, shiftKey = false) =>
      document.dispatchEvent(new KeyboardEvent('keydown', { key, shiftKey, bubbles: true, cancelable: true }));
    const at = () => current + 1;
    const hash = () => Number(location.hash.slice(1));
    const wrong = [];
    let steps = 0;
    const expect = (keys, want) => {
      steps += 1;
      if (at() !== want || hash() !== want) wrong.push({ keys, want, slide: at(), hash: hash() });
    };
    const misfits = [];
    press('Home');
    expect('Home', 1);
    for (let n = 1; n <= slides.length; n += 1) {
      if (n > 1) {
        press('ArrowRight');
        expect('ArrowRight', n);
      }
      const problem = misfit(slides[current]);
      if (problem) misfits.push({ slide: at(), title: slides[current].dataset.title, problem });
    }
    const last = slides.length;
    press('ArrowRight'); expect('ArrowRight on the last slide', last);
    press('Home'); expect('Home', 1);
    press('ArrowLeft'); expect('ArrowLeft on the first slide', 1);
    press(' '); expect('Space', Math.min(2, last));
    press('PageDown'); expect('PageDown', Math.min(3, last));
    press('PageUp'); expect('PageUp', Math.min(2, last));
    press(' ', true); expect('Shift+Space', 1);
    press('End'); expect('End', last);
    press('ArrowUp'); expect('ArrowUp', Math.max(1, last - 1));
    press('ArrowDown'); expect('ArrowDown', last);
    press('2'); press('Enter'); expect('2 Enter', Math.min(2, last));

    const result = { slides: slides.length, steps, keys_ok: wrong.length === 0, wrong, misfits };
    document.body.dataset.check = JSON.stringify(result);

    const report = document.createElement('div');
    report.id = 'check-report';
    report.dataset.ok = String(result.keys_ok && misfits.length === 0);
    const line = (text) => Object.assign(document.createElement('p'), { textContent: text });
    report.append(line(`${slides.length} slides at ${innerWidth}×${innerHeight}; ` +
      `${steps} key steps, ${wrong.length} wrong; ${misfits.length} slide(s) do not fit.`));
    for (const m of misfits) report.append(line(`#${m.slide} ${m.title}: ${m.problem}`));
    for (const w of wrong) report.append(line(`${w.keys}: slide ${w.slide}, hash ${w.hash}, wanted ${w.want}`));
    document.body.append(report);
  }

  show(indexFromHash(), { tell: false });
  if (checking) {
    // Measure with the real fonts, once everything is laid out.
    const run = () => document.fonts.ready.then(check);
    if (document.readyState === 'complete') run();
    else window.addEventListener('load', run);
  }
})();

// <websem-search>: a small search box over a websem bundle.
//
//   <script type="module" src="./runtime/component.js"></script>
//   <websem-search bundle="./" k="10" placeholder="Search the docs" facet="section"></websem-search>
//
// Attribute `state` reflects loading | ready | searching | error, attribute `tier` the engine's
// tier: "lexical" while the model loads (keyword results; a progress bar shows the bytes loaded),
// then "full" ("lexical-only" when the model failed to load: keyword results stay, the status line
// says why). When the model is up the current query runs again and its results replace the
// keyword ones in place (the same list items, the input untouched: no flicker, focus and cursor
// kept). Events: `websem-ready` (detail: info, as soon as keyword results can be shown),
// `websem-model-ready` (detail: info, the full tier is up), `websem-results` (detail: {query,
// hits, facets, mode, tier}), `websem-error` (detail: {message}).
// A mode selector (the bundle's modes, its default first) and one filter (a <select> over the
// values of the `facet` field, default the bundle's first facet field, with counts) sit above the results; query terms
// in snippets are <mark> elements. Every piece of document text goes into the DOM through
// textContent / createElement, never as HTML.
import { load } from "../websem.js";

const STYLE = `
:host { display: block; font: 16px/1.4 system-ui, sans-serif; max-width: 48rem; }
input { box-sizing: border-box; width: 100%; padding: .6rem .8rem; font: inherit; border: 1px solid #888; border-radius: .4rem; }
.status { color: #555; margin: .5rem 0; min-height: 1.4em; }
:host([state="error"]) .status { color: #b00020; }
ol { list-style: none; padding: 0; margin: 0; }
li { padding: .6rem 0; border-bottom: 1px solid #eee; }
a { font-weight: 600; color: #1a4fa0; text-decoration: none; }
a:hover { text-decoration: underline; }
.snippet { margin: .2rem 0 0; color: #333; }
.score { color: #888; font-size: .8em; margin-left: .5rem; }
.controls { display: flex; gap: .5rem; margin-top: .4rem; }
.controls select { font: inherit; font-size: .9em; }
progress { display: block; width: 100%; height: .3rem; margin-top: .3rem; }
progress[hidden] { display: none; }
mark { background: #fff3a0; color: inherit; padding: 0; }
`;

const MODE_LABELS = { hybrid: "Hybrid", semantic: "Semantic", lexical: "Keyword" };

const DEBOUNCE_MS = 120;

export class WebsemSearch extends HTMLElement {
  #engine = null;
  #timer = 0;
  #seq = 0;
  #shownTier = null; // the tier of the results on screen
  #snippetKeys = new WeakMap(); // snippet <p> -> the [snippet, highlights] it shows

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = STYLE;
    this.input = document.createElement("input");
    this.input.type = "search";
    this.input.setAttribute("part", "input");
    this.input.setAttribute("aria-label", "Search");
    this.statusLine = document.createElement("div");
    this.statusLine.className = "status";
    this.statusLine.setAttribute("part", "status");
    this.statusLine.setAttribute("role", "status");
    this.modeSelect = document.createElement("select");
    this.modeSelect.className = "mode";
    this.modeSelect.setAttribute("part", "mode");
    this.modeSelect.setAttribute("aria-label", "Search mode");
    this.filterSelect = document.createElement("select");
    this.filterSelect.className = "filter";
    this.filterSelect.setAttribute("part", "filter");
    this.filterSelect.hidden = true;
    const controls = document.createElement("div");
    controls.className = "controls";
    controls.append(this.modeSelect, this.filterSelect);
    // Bytes loaded / total while the engine and then the model load (onProgress "bytes" events;
    // indeterminate until the first one).
    this.progress = document.createElement("progress");
    this.progress.setAttribute("part", "progress");
    this.progress.setAttribute("aria-label", "Loading search");
    this.progress.max = 1;
    this.progress.hidden = true;
    this.list = document.createElement("ol");
    this.list.setAttribute("part", "results");
    root.append(style, this.input, this.progress, controls, this.statusLine, this.list);
  }

  /** The loaded engine (null until `websem-ready`). */
  get engine() {
    return this.#engine;
  }

  connectedCallback() {
    this.input.placeholder = this.getAttribute("placeholder") ?? "Search";
    this.input.addEventListener("input", () => this.#schedule());
    this.modeSelect.addEventListener("change", () => this.#search());
    this.filterSelect.addEventListener("change", () => this.#search());
    if (!this.#engine && this.getAttribute("state") !== "loading") this.#load();
  }

  async #load() {
    this.#setState("loading", "Loading search…");
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    const bundle = new URL(this.getAttribute("bundle") ?? "./", document.baseURI);
    try {
      this.#engine = await load(bundle, {
        onProgress: (e) => {
          if (e.stage === "bytes" && e.overall?.total > 0) this.progress.value = Math.min(1, e.overall.loaded / e.overall.total);
          if (this.getAttribute("state") === "loading" && e.stage !== "bytes") {
            this.statusLine.textContent = `Loading search… (${e.stage})`;
          }
        },
      });
    } catch (e) {
      this.progress.hidden = true;
      this.#fail(e);
      return;
    }
    const modes = this.#engine.info.modes;
    this.modeSelect.replaceChildren(
      ...modes.map((m) => {
        const o = document.createElement("option");
        o.value = m;
        o.textContent = MODE_LABELS[m] ?? m;
        return o;
      }),
    );
    this.modeSelect.value = modes[0];
    this.modeSelect.hidden = modes.length < 2;
    this.setAttribute("tier", this.#engine.info.tier ?? "full");
    this.progress.hidden = this.#engine.info.tier !== "lexical";
    this.#setState("ready", "");
    this.dispatchEvent(new CustomEvent("websem-ready", { detail: this.#engine.info }));
    if (this.input.value.trim()) this.#search();
    if (this.#engine.info.tier === "lexical") this.#awaitModel(this.#engine);
  }

  /** The full tier: re-run the current query quietly and update the results in place. */
  async #awaitModel(engine) {
    try {
      await engine.ready;
    } catch (e) {
      // Keyword results keep working; say why semantic ranking is missing.
      this.progress.hidden = true;
      this.setAttribute("tier", "lexical-only");
      const message = e?.message ?? String(e);
      this.statusLine.textContent = `Keyword results only: ${message}`;
      this.dispatchEvent(new CustomEvent("websem-error", { detail: { message } }));
      console.warn(message);
      return;
    }
    if (engine !== this.#engine) return;
    this.progress.hidden = true;
    this.setAttribute("tier", "full");
    this.dispatchEvent(new CustomEvent("websem-model-ready", { detail: engine.info }));
    if (this.input.value.trim() && this.#shownTier === "lexical") this.#search({ quiet: true });
  }

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#search(), DEBOUNCE_MS);
  }

  /** Run the input's query; `quiet`: keep the status line (a re-run when the model arrives). */
  async #search({ quiet = false } = {}) {
    if (!this.#engine) return;
    const query = this.input.value.trim();
    const seq = ++this.#seq;
    if (!query) {
      this.list.replaceChildren();
      this.#shownTier = null;
      this.#setState("ready", "");
      return;
    }
    if (!quiet) this.#setState("searching", "Searching…");
    const field = this.#facetField();
    const value = this.filterSelect.value;
    // No k attribute: the bundle's default (manifest.search.k).
    const opts = { mode: this.modeSelect.value || undefined };
    if (this.hasAttribute("k")) opts.k = Number(this.getAttribute("k"));
    if (value && field) opts.filters = { [field]: value };
    let result;
    try {
      result = await this.#engine.searchFull(query, opts);
    } catch (e) {
      if (seq === this.#seq) this.#fail(e);
      return;
    }
    if (seq !== this.#seq) return; // a newer query superseded this one
    const { hits, facets } = result;
    if (field) this.#renderFilter(field, facets[field] ?? [], value); // no facet field: no filter
    this.#render(hits);
    this.#shownTier = result.tier ?? "full";
    const count = hits.length ? `${hits.length} results` : "No results";
    this.#setState("ready", this.#shownTier === "lexical" ? `${count} (keyword matches; semantic ranking loading)` : count);
    this.dispatchEvent(new CustomEvent("websem-results", { detail: { query, ...result } }));
  }

  #facetField() {
    return this.getAttribute("facet") ?? this.#engine?.info.search.facets[0];
  }

  /** Options "All <field>" + one per facet value with its count. While a value is selected the
   * counts are over the filtered results, so the other options are kept from the last unfiltered
   * search instead of being replaced. */
  #renderFilter(field, counts, selected) {
    const option = (v, label) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = label;
      return o;
    };
    if (!selected) {
      this.filterSelect.replaceChildren(
        option("", `All ${field.endsWith("s") ? field : `${field}s`}`),
        ...counts.map(([v, n]) => option(v, `${v} (${n})`)),
      );
      this.filterSelect.setAttribute("aria-label", `Filter by ${field}`);
    } else {
      const n = counts.find(([v]) => v === selected)?.[1] ?? 0;
      const cur = [...this.filterSelect.options].find((o) => o.value === selected);
      if (cur) cur.textContent = `${selected} (${n})`;
      else this.filterSelect.append(option(selected, `${selected} (${n})`));
      this.filterSelect.value = selected;
    }
    this.filterSelect.hidden = this.filterSelect.options.length < 2;
  }

  /** The hits as list items, updated in place: item i is reused for hit i (its content changes
   * only where it differs), so a re-ranked list does not flash and nothing is re-created. */
  #render(hits) {
    const items = [...this.list.children];
    hits.forEach((h, i) => {
      let li = items[i];
      if (!li) {
        li = document.createElement("li");
        li.setAttribute("part", "hit");
        const score = document.createElement("span");
        score.className = "score";
        const p = document.createElement("p");
        p.className = "snippet";
        li.append(document.createElement("a"), score, p);
        this.list.append(li);
      }
      const [a, score, p] = li.children;
      li.dataset.id = h.id;
      const title = h.title || h.id;
      if (a.textContent !== title) a.textContent = title;
      const href = h.url && !/^\s*javascript:/i.test(h.url) ? h.url : null;
      if (href === null) a.removeAttribute("href");
      else if (a.getAttribute("href") !== href) a.setAttribute("href", href);
      const shown = h.score.toFixed(3);
      if (score.textContent !== shown) score.textContent = shown;
      const key = JSON.stringify([h.snippet ?? "", h.highlights ?? []]);
      if (this.#snippetKeys.get(p) !== key) {
        this.#snippetKeys.set(p, key);
        p.replaceChildren(...highlighted(h.snippet ?? "", h.highlights ?? []));
      }
    });
    for (const extra of items.slice(hits.length)) extra.remove();
  }

  #fail(e) {
    const message = e?.message ?? String(e);
    this.#setState("error", message);
    this.dispatchEvent(new CustomEvent("websem-error", { detail: { message } }));
    console.warn(message);
  }

  #setState(state, text) {
    this.setAttribute("state", state);
    this.statusLine.textContent = text;
  }
}

/**
 * Text nodes and <mark> elements for `text` with `ranges` ([start, end) in UTF-16 code units, as
 * the engine returns them) marked. Built with createElement/createTextNode only: snippet text is
 * document content and must never be parsed as HTML.
 */
export function highlighted(text, ranges) {
  const out = [];
  let at = 0;
  for (const [s, e] of ranges) {
    if (!(Number.isInteger(s) && Number.isInteger(e) && at <= s && s < e && e <= text.length)) continue;
    if (s > at) out.push(document.createTextNode(text.slice(at, s)));
    const mark = document.createElement("mark");
    mark.textContent = text.slice(s, e);
    out.push(mark);
    at = e;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

if (!customElements.get("websem-search")) customElements.define("websem-search", WebsemSearch);

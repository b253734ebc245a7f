// <websem-search>: a small search box over a websem bundle.
//
//   <script type="module" src="./runtime/component.js"></script>
//   <websem-search bundle="./" k="10" placeholder="Search the docs" facet="section"></websem-search>
//
// Attribute `state` reflects loading | ready | searching | error. Events: `websem-ready`
// (detail: info), `websem-results` (detail: {query, hits, facets, mode}), `websem-error` (detail: {message}).
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
mark { background: #fff3a0; color: inherit; padding: 0; }
`;

const MODE_LABELS = { hybrid: "Hybrid", semantic: "Semantic", lexical: "Keyword" };

const DEBOUNCE_MS = 120;

export class WebsemSearch extends HTMLElement {
  #engine = null;
  #timer = 0;
  #seq = 0;

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
    this.list = document.createElement("ol");
    this.list.setAttribute("part", "results");
    root.append(style, this.input, controls, this.statusLine, this.list);
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
    const bundle = new URL(this.getAttribute("bundle") ?? "./", document.baseURI);
    try {
      this.#engine = await load(bundle, {
        onProgress: (e) => {
          if (this.getAttribute("state") === "loading") this.statusLine.textContent = `Loading search… (${e.stage})`;
        },
      });
    } catch (e) {
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
    this.#setState("ready", "");
    this.dispatchEvent(new CustomEvent("websem-ready", { detail: this.#engine.info }));
    if (this.input.value.trim()) this.#search();
  }

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#search(), DEBOUNCE_MS);
  }

  async #search() {
    if (!this.#engine) return;
    const query = this.input.value.trim();
    const seq = ++this.#seq;
    if (!query) {
      this.list.replaceChildren();
      this.#setState("ready", "");
      return;
    }
    this.#setState("searching", "Searching…");
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
    this.#setState("ready", hits.length ? `${hits.length} results` : "No results");
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

  #render(hits) {
    const items = hits.map((h) => {
      const li = document.createElement("li");
      li.setAttribute("part", "hit");
      li.dataset.id = h.id;
      const a = document.createElement("a");
      a.textContent = h.title || h.id;
      if (h.url && !/^\s*javascript:/i.test(h.url)) a.href = h.url;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = h.score.toFixed(3);
      const p = document.createElement("p");
      p.className = "snippet";
      p.append(...highlighted(h.snippet ?? "", h.highlights ?? []));
      li.append(a, score, p);
      return li;
    });
    this.list.replaceChildren(...items);
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

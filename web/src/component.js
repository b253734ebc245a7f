// <websem-search>: a small search box over a websem bundle.
//
//   <script type="module" src="./runtime/component.js"></script>
//   <websem-search bundle="./" k="10" placeholder="Search the docs"></websem-search>
//
// Attribute `state` reflects loading | ready | searching | error. Events: `websem-ready`
// (detail: info), `websem-results` (detail: {query, hits}), `websem-error` (detail: {message}).
// Every piece of document text goes into the DOM through textContent, never as HTML.
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
`;

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
    this.list = document.createElement("ol");
    this.list.setAttribute("part", "results");
    root.append(style, this.input, this.statusLine, this.list);
  }

  /** The loaded engine (null until `websem-ready`). */
  get engine() {
    return this.#engine;
  }

  connectedCallback() {
    this.input.placeholder = this.getAttribute("placeholder") ?? "Search";
    this.input.addEventListener("input", () => this.#schedule());
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
    let hits;
    try {
      hits = await this.#engine.search(query, { k: Number(this.getAttribute("k") ?? 10) });
    } catch (e) {
      if (seq === this.#seq) this.#fail(e);
      return;
    }
    if (seq !== this.#seq) return; // a newer query superseded this one
    this.#render(hits);
    this.#setState("ready", hits.length ? `${hits.length} results` : "No results");
    this.dispatchEvent(new CustomEvent("websem-results", { detail: { query, hits } }));
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
      p.textContent = h.snippet;
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

if (!customElements.get("websem-search")) customElements.define("websem-search", WebsemSearch);

"""The runtime under a strict Content-Security-Policy: no `unsafe-eval`, no `blob:`, no inline
script, workers from the page's own origin only.

Users of in-browser ML hit CSP walls (Pyodide and ORT builds that `eval` or spawn `blob:`
workers); websem's runtime must load and rank under

    script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'

sent on every response (page, modules, workers), with `default-src 'self'` so nothing may reach
another origin. The page reports any violation through `securitypolicyviolation`, and Chromium
logs refused evaluations to the console; both must stay empty, and the engine must answer all
three modes with the same hits as without the policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

STRICT_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'"
)
QUERIES = ["boundary layer separation", "heat transfer at hypersonic speeds"]


@pytest.fixture(scope="module")
def csp_url(browser_bundle: Path, serve) -> str:
    return serve(browser_bundle, headers={"Content-Security-Policy": STRICT_CSP})


def test_a_policy_without_wasm_unsafe_eval_is_named_in_the_error(browser_context, browser_bundle: Path,
                                                                 serve, bt) -> None:
    """The one directive the runtime needs: without it `load()` fails, and the message says which
    directive to add (not ORT's or Pyodide's advice to rebuild the bundle)."""
    url = serve(browser_bundle, headers={"Content-Security-Policy": STRICT_CSP.replace(" 'wasm-unsafe-eval'", "")})
    message = bt.load_error(browser_context, url)
    assert "Content-Security-Policy forbids compiling WebAssembly" in message, message
    assert "add 'wasm-unsafe-eval' to its script-src" in message, message


def test_runtime_loads_and_ranks_under_a_strict_csp(browser_context, csp_url: str,
                                                   browser_bundle: Path, bt) -> None:
    page = browser_context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    # The header reaches the page: without it this test would prove nothing.
    response = page.goto(csp_url + "index.html")
    assert response is not None and response.headers.get("content-security-policy") == STRICT_CSP
    page.evaluate("""() => { window.__csp = [];
        document.addEventListener('securitypolicyviolation',
            (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`)); }""")
    # The policy is really in force: an inline script and a blob: worker are refused. (An `eval`
    # probe would prove nothing: code that Playwright evaluates through CDP may always eval.)
    probe = page.evaluate("""async () => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = true';
        document.head.append(s);
        new Worker(URL.createObjectURL(new Blob([''], {type: 'text/javascript'})));
        await new Promise((r) => setTimeout(r, 300));
        return {inline: window.__inline === true, violations: window.__csp.splice(0)};
    }""")
    assert probe["inline"] is False, probe
    assert sorted(probe["violations"]) == ["script-src-elem inline", "worker-src blob"], probe
    violations.clear()  # the probe's own reports
    got = page.evaluate(
        """async (queries) => {
            const m = await import('./websem.js');
            const engine = await m.load(new URL('./', location.href));
            await engine.ready;
            const out = {};
            for (const mode of ['hybrid', 'semantic', 'lexical']) {
                out[mode] = [];
                for (const q of queries) out[mode].push(await engine.searchFull(q, {k: 5, mode}));
            }
            out.snapshot = engine.info.pyodide_snapshot;
            await engine.close();
            return out;
        }""",
        QUERIES,
    )
    page_violations = page.evaluate("() => window.__csp")
    page.close()
    assert not page_violations, f"CSP violations: {page_violations}"
    assert not violations, f"CSP console reports: {violations}"
    # Same answers as the CPU reference, mode by mode.
    for mode in bt.MODES:
        want = bt.websem_query_json(browser_bundle, QUERIES, mode, k=5)
        bt.assert_same_results(browser_bundle, mode, QUERIES, got[mode], want, engine=f"Chromium under CSP ({mode})")

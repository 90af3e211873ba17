/**
 * The console's style sheet and its one script, served from this origin so that the CSP needs no
 * inline code. The script refreshes the page's <main> every few seconds (polling: plain GETs through
 * any proxy), and holds off while the user is typing in a form.
 */

export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;color:#1d2329;background:#f5f6f8}
header{background:#1f3a5f;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem}
header b{font-size:1.1rem;margin-right:.5rem}
header a{color:#dfe9f5;text-decoration:none;padding:.25rem 0}
header a[aria-current]{color:#fff;border-bottom:2px solid #fff}
header form{margin-left:auto}
header .who{font-size:.85rem;opacity:.85}
main{padding:1rem;max-width:72rem;margin:0 auto}
h1{font-size:1.3rem;margin:.2rem 0 .8rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e1e4e8;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.75rem;margin:.5rem 0}
.post .subject{font-weight:600;word-break:break-word}
.post .meta{font-size:.85rem;color:#57606a;word-break:break-all}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.5rem;align-items:center}
.actions form{display:flex;gap:.25rem;margin:0}
input[type=text],input[type=password]{font:inherit;padding:.4rem;border:1px solid #c4c9cf;border-radius:4px;min-width:0}
button{font:inherit;padding:.35rem .8rem;border:1px solid #8c959f;border-radius:4px;background:#f6f8fa;cursor:pointer}
button.go{background:#1f883d;color:#fff;border-color:#1a7f37}
button.stop{background:#cf222e;color:#fff;border-color:#a40e26}
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{color:#9a6700}
.flash{padding:.5rem .75rem;border-radius:4px;background:#ddf4ff;border:1px solid #54aeff;margin-bottom:.75rem}
.flash.err{background:#ffebe9;border-color:#ff8182}
.login{max-width:22rem;margin:3rem auto}
.login label{display:block;margin:.6rem 0 .2rem}
.login input{width:100%}
.login button{margin-top:1rem;width:100%}
.muted{color:#57606a;font-size:.85rem}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #e1e4e8;padding:.5rem}
@media (max-width:40rem){main{padding:.5rem}th,td{padding:.3rem}header form{margin-left:0}}
`;

export const CONSOLE_JS = `"use strict";
(function () {
  var every = 5000;
  function typing() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA") && a.value !== "";
  }
  function refresh() {
    if (document.hidden || typing()) return;
    fetch(location.href, { credentials: "same-origin", headers: { "x-console-refresh": "1" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var next = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (next && main && !typing()) main.replaceWith(next);
      })
      .catch(function () {});
  }
  setInterval(refresh, every);
})();
`;

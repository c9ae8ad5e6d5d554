// Small improvements over pages that work without it: council search, a live preview, copy buttons, and focus on
// the error summary. Served by the app: the Content-Security-Policy allows no inline script.
"use strict";
document.documentElement.classList.add("js");

function councilSearch() {
  const input = document.getElementById("council-search");
  const list = document.getElementById("councils");
  const status = document.getElementById("council-search-status");
  if (!input || !list) return;
  input.addEventListener("input", () => {
    const words = input.value.trim().toLowerCase();
    let shown = 0;
    for (const group of list.querySelectorAll("details.region-group")) {
      let inGroup = 0;
      for (const choice of group.querySelectorAll(".choice[data-name]")) {
        const match = !words || choice.dataset.name.includes(words);
        choice.hidden = !match;
        if (match) inGroup += 1;
      }
      group.hidden = inGroup === 0;
      if (words) group.open = inGroup > 0;
      shown += inGroup;
    }
    status.textContent = words ? `${shown} council${shown === 1 ? "" : "s"} found` : "";
  });
}

function scopeToggle() {
  const every = document.getElementById("scope-all");
  const list = document.getElementById("councils");
  if (!every || !list) return;
  const update = () => { list.hidden = every.checked; };
  for (const radio of document.querySelectorAll("input[name=scope]")) radio.addEventListener("change", update);
  update();
}

function frequencyToggle() {
  // each frequency's own choice (the hour, the day) shows under it only while it is chosen
  const radios = [...document.querySelectorAll("input[name=frequency]")];
  const update = () => {
    for (const radio of radios) {
      const next = radio.closest(".choice").nextElementSibling;
      if (next && next.classList.contains("conditional")) next.hidden = !radio.checked;
    }
  };
  for (const radio of radios) radio.addEventListener("change", update);
  update();
}

function renderPreview(box, data) {
  box.replaceChildren();
  const p = document.createElement("p");
  if (data.error) {
    p.className = "hint";
    p.textContent = data.error;
    box.append(p);
    return;
  }
  p.className = "hint";
  p.textContent = `${data.total} update${data.total === 1 ? "" : "s"} in the last ${data.days} days, ` +
    `about ${data.weekly_estimate} a week.`;
  box.append(p);
  if (data.warning) {
    const w = document.createElement("p");
    w.className = "warning-text";
    w.textContent = `That is ${data.warning}.`;
    box.append(w);
  }
  if (data.items.length) {
    const ul = document.createElement("ul");
    ul.className = "preview-list small";
    for (const item of data.items) {
      const li = document.createElement("li");
      li.append(`${item.date} · ${item.council}: `);
      if (item.url) {
        const a = document.createElement("a");
        a.href = item.url;
        a.textContent = item.title;
        li.append(a);
      } else {
        li.append(item.title);
      }
      for (const where of item.snippets || []) {
        const hint = document.createElement("span");
        hint.className = "hint";
        hint.textContent = where;
        li.append(document.createElement("br"), hint);
      }
      ul.append(li);
    }
    box.append(ul);
  }
}

function livePreview() {
  const box = document.getElementById("live-preview");
  const query = document.getElementById("query");
  if (!box || !query) return;
  const form = query.form;
  let timer = null;
  let latest = 0;
  const run = async () => {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (["query", "council", "region", "scope"].includes(name)) params.append(name, value);
    }
    const mine = ++latest;
    try {
      const resp = await fetch(`/preview?${params}`, { headers: { Accept: "application/json" } });
      const data = await resp.json();
      if (mine === latest) renderPreview(box, data);
    } catch (e) {
      box.replaceChildren();
    }
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(run, 400); };
  query.addEventListener("input", later);
  form.addEventListener("change", (e) => { if (e.target.name !== "email") later(); });
}

function copyButtons() {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        button.firstChild.textContent = "Copied";
      } catch (e) {
        button.firstChild.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

function focusErrors() {
  const summary = document.querySelector("[data-focus]");
  if (!summary) return;
  summary.focus();
  // a link in the summary takes the focus to its field, not only the view
  for (const link of summary.querySelectorAll("a[href^='#']")) {
    link.addEventListener("click", (e) => {
      const field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      e.preventDefault();
      if (field.tabIndex < 0 && !field.matches("input, select, textarea")) field.setAttribute("tabindex", "-1");
      field.focus();
      field.scrollIntoView({ block: "center" });
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  councilSearch();
  scopeToggle();
  frequencyToggle();
  livePreview();
  copyButtons();
  focusErrors();
});

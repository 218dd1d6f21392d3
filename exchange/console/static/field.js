// The field form: built from the report type's JSON Schema, offline first.
// Reports written offline wait in an outbox on the device, encrypted with a key the page
// cannot read out (WebCrypto, non-extractable), and go when the phone is back online, each
// with its own Idempotency-Key: a report whose answer was lost is sent again and the hub
// answers as it did the first time. Logging out clears it all (Clear-Site-Data).
"use strict";
(function () {
  const root = document.getElementById("field");
  if (!root) return;
  const BUNDLE = root.dataset.bundle;
  const SEND = root.dataset.send;
  const CSRF = root.dataset.csrf;
  // The outbox is the phone's; its entries are their authors'. Another officer signed in on
  // the same phone neither sees nor sends them (they wait for their author).
  const USER = root.dataset.user;
  let bundle = null;
  let current = null; // {type, widget, draft, replaces}
  let flushing = false;
  const RETRY_MS = 3000;

  // --- small DOM helpers -------------------------------------------------------------------
  let serial = 0;
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k in node) node[k] = v;
      else node.setAttribute(k, v);
    });
    children.flat().forEach((c) => c && node.append(c));
    return node;
  };
  const uid = () => "f" + ++serial;
  const say = (node, text) => { node.textContent = text || ""; };

  // --- the encrypted store on the device ------------------------------------------------------
  const DB = "exchange-field";
  const open = () => new Promise((ok, fail) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore("keys");
      request.result.createObjectStore("outbox", { keyPath: "id" });
    };
    request.onsuccess = () => ok(request.result);
    request.onerror = () => fail(request.error);
  });
  const tx = async (store, mode, work) => {
    const db = await open();
    return new Promise((ok, fail) => {
      const t = db.transaction(store, mode);
      const result = work(t.objectStore(store));
      t.oncomplete = () => ok(result && "result" in result ? result.result : undefined);
      t.onerror = () => fail(t.error);
    });
  };
  let keyPromise = null;
  const key = () => keyPromise || (keyPromise = (async () => {
    const found = await tx("keys", "readonly", (s) => s.get("outbox"));
    if (found) return found;
    const made = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    await tx("keys", "readwrite", (s) => s.put(made, "outbox"));
    return made;
  })());
  const seal = async (value) => {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await key(), new TextEncoder().encode(JSON.stringify(value)));
    return { iv, data };
  };
  const unseal = async (sealed) => JSON.parse(new TextDecoder().decode(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.iv }, await key(), sealed.data)));
  const saveEntry = async (entry) => {
    const sealed = await seal(entry);
    await tx("outbox", "readwrite", (s) => s.put({ id: entry.id, at: entry.at, sealed }));
  };
  const entries = async () => {
    const rows = (await tx("outbox", "readonly", (s) => s.getAll())) || [];
    const opened = await Promise.all(rows.map((r) => unseal(r.sealed).catch(() => null)));
    return opened.filter((e) => e && e.user === USER).sort((a, b) => a.at.localeCompare(b.at));
  };

  // --- widgets: one per schema node -----------------------------------------------------------
  const labelOf = (node, name) => (node["x-description-id"] || node.description || name).replace(/\.$/, "");

  function errorSlot() { return el("p", { class: "field-error", role: "alert" }); }

  function leaf(node, name, required, pathOf, control, readValue, writeValue) {
    const id = control.id || (control.id = uid());
    const hint = node["x-expected"] ? el("small", { text: node["x-expected"].id }) : null;
    const error = errorSlot();
    const wrap = el("div", { class: "field" },
      el("label", { htmlFor: id, text: labelOf(node, name) + (required ? " *" : "") }), control, hint, error);
    return { dom: wrap, error, path: pathOf, read: readValue, write: writeValue };
  }

  function makeWidget(node, name, required, pathOf) {
    const type = node.type;
    const pointer = () => pathOf();
    if (type === "object") return objectWidget(node, name, required, pathOf);
    if (type === "array") return arrayWidget(node, name, required, pathOf);
    let control, read, write;
    const here = pathOf().replace(/\/\d+(?=\/|$)/g, "/*");
    if (bundle.current.regionPaths.includes(here)) {
      return regionWidget(node, name, required, pathOf);
    }
    if (Array.isArray(node.enum)) {
      const labels = node["x-labels"] || {};
      control = el("select", {}, el("option", { value: "", text: "—" }),
        node.enum.map((v) => el("option", { value: v, text: (labels[v] && labels[v].id) || v })));
      read = () => control.value || undefined;
      write = (v) => { control.value = v == null ? "" : v; };
    } else if (type === "boolean") {
      control = el("select", {}, el("option", { value: "", text: "—" }),
        el("option", { value: "true", text: "Ya" }), el("option", { value: "false", text: "Tidak" }));
      read = () => control.value === "" ? undefined : control.value === "true";
      write = (v) => { control.value = v == null ? "" : String(v); };
    } else if (type === "integer" || type === "number") {
      control = el("input", { type: "number", inputMode: "numeric", min: node.minimum, max: node.maximum });
      read = () => control.value === "" ? undefined : Number(control.value);
      write = (v) => { control.value = v == null ? "" : v; };
    } else if (node.pattern === "^[A-Z]{2}$") {
      control = el("select", {}, el("option", { value: "", text: "—" }),
        Object.entries(bundle.countries).map(([c, n]) => el("option", { value: c, text: n + " (" + c + ")" })));
      read = () => control.value || undefined;
      write = (v) => { control.value = v || ""; };
    } else if (bundle.current.recipientPaths.includes(here)) {
      control = el("select", {}, el("option", { value: "", text: "—" }),
        Object.entries(bundle.agencies).map(([id, n]) => el("option", { value: id, text: n })));
      read = () => control.value || undefined;
      write = (v) => { control.value = v || ""; };
    } else if (node.format === "date") {
      control = el("input", { type: "date" });
      read = () => control.value || undefined;
      write = (v) => { control.value = v || ""; };
    } else if (node.format === "date-time") {
      // Times in WIB: the picker has no zone, the report says +07:00.
      control = el("input", { type: "datetime-local", step: 60 });
      read = () => control.value ? control.value.slice(0, 16) + ":00+07:00" : undefined;
      write = (v) => { control.value = v ? wib(v) : ""; };
    } else if (node.format === "phone") {
      control = el("input", { type: "tel", inputMode: "tel", autocomplete: "off" });
      read = () => control.value.trim() || undefined;
      write = (v) => { control.value = v || ""; };
    } else {
      control = (node.maxLength || 0) > 200 ? el("textarea", { maxLength: node.maxLength })
        : el("input", { type: "text", maxLength: node.maxLength, autocomplete: "off" });
      read = () => control.value.trim() || undefined;
      write = (v) => { control.value = v == null ? "" : v; };
    }
    const w = leaf(node, name, required, pointer, control, read, write);
    if (node["x-guide"]) { // the severity guide beside the choice
      const guide = el("p", { class: "guide", "aria-live": "polite" });
      const show = () => say(guide, control.value && node["x-guide"][control.value] ? node["x-guide"][control.value].id : "");
      control.addEventListener("change", show);
      w.dom.insertBefore(guide, w.error);
      const base = w.write;
      w.write = (v) => { base(v); show(); };
    }
    control.dataset.pointer = pointer();
    w.locate = () => w;
    w.refresh = () => { control.dataset.pointer = pointer(); };
    return w;
  }

  function wib(iso) {
    const moment = new Date(iso);
    const shifted = new Date(moment.getTime() + 7 * 3600 * 1000);
    return shifted.toISOString().slice(0, 16);
  }

  function regionWidget(node, name, required, pathOf) {
    // Kabupaten -> kecamatan -> desa, by name; a code typed by hand for regions elsewhere.
    const codes = Object.keys(bundle.regions);
    const level = (parent, length) => codes.filter((c) => c.length === length && c.startsWith(parent));
    const select = (label) => el("select", { "aria-label": label }, el("option", { value: "", text: "—" }));
    const regency = select("Kabupaten/kota"), district = select("Kecamatan"), village = select("Desa/kelurahan");
    const typed = el("input", { type: "text", inputMode: "decimal", placeholder: "36.03.11.2009", "aria-label": "atau ketik kode", maxLength: 13 });
    const fill = (target, list) => {
      target.replaceChildren(el("option", { value: "", text: "—" }),
        ...list.map((c) => el("option", { value: c, text: bundle.regions[c] + " (" + c + ")" })));
    };
    const province = bundle.agency.jurisdiction.slice(0, 2);
    fill(regency, level(province, 5));
    regency.addEventListener("change", () => { fill(district, level(regency.value, 8)); fill(village, []); typed.value = ""; });
    district.addEventListener("change", () => { fill(village, level(district.value, 13)); typed.value = ""; });
    village.addEventListener("change", () => { typed.value = ""; });
    const read = () => typed.value.trim() || village.value || district.value || regency.value || undefined;
    const write = (code) => {
      typed.value = "";
      if (!code) { regency.value = ""; fill(district, []); fill(village, []); return; }
      if (!bundle.regions[code]) { typed.value = code; return; }
      regency.value = code.slice(0, 5); fill(district, level(regency.value, 8));
      if (code.length >= 8) { district.value = code.slice(0, 8); fill(village, level(district.value, 13)); }
      if (code.length === 13) village.value = code;
    };
    const id = uid();
    regency.id = id;
    const error = errorSlot();
    const dom = el("div", { class: "field region" },
      el("label", { htmlFor: id, text: labelOf(node, name) + (required ? " *" : "") }),
      regency, district, village, typed, error);
    const w = { dom, error, path: pathOf, read, write };
    w.locate = () => w;
    w.refresh = () => { dom.dataset.pointer = pathOf(); };
    w.refresh();
    // The officer's own village (or office), preselected where the report is about a place
    // (a required field at the top); nowhere in an optional section, which it would fill.
    const topLevel = pathOf().split("/").length === 2;
    if (required && topLevel && bundle.regions[bundle.agency.jurisdiction]) write(bundle.agency.jurisdiction);
    return w;
  }

  function objectWidget(node, name, required, pathOf) {
    const children = {};
    const error = errorSlot();
    const box = name === null ? el("div", { class: "form-root" }) : el("fieldset", {}, el("legend", { text: labelOf(node, name) + (required ? " *" : "") }));
    const requiredNames = node.required || [];
    Object.entries(node.properties || {}).forEach(([key, child]) => {
      const w = makeWidget(child, key, requiredNames.includes(key), () => pathOf() + "/" + key);
      children[key] = w;
      box.append(w.dom);
    });
    box.append(error);
    const w = {
      dom: box, error, path: pathOf,
      read: () => {
        const out = {};
        Object.entries(children).forEach(([k, c]) => { const v = c.read(); if (v !== undefined) out[k] = v; });
        return Object.keys(out).length || required || name === null ? out : undefined;
      },
      write: (value) => Object.entries(children).forEach(([k, c]) => c.write(value ? value[k] : undefined)),
      locate: (parts) => {
        if (!parts.length) return w;
        const c = children[parts[0]];
        return (c && c.locate(parts.slice(1))) || w;
      },
      refresh: () => Object.values(children).forEach((c) => c.refresh && c.refresh()),
    };
    return w;
  }

  function arrayWidget(node, name, required, pathOf) {
    const items = node.items || {};
    const error = errorSlot();
    if (Array.isArray(items.enum)) { // a set of choices: checkboxes
      const labels = items["x-labels"] || {};
      const boxes = items.enum.map((v) => el("input", { type: "checkbox", value: v, id: uid() }));
      const dom = el("fieldset", { class: "choices" }, el("legend", { text: labelOf(node, name) + (required ? " *" : "") }),
        boxes.map((b) => el("label", { class: "choice" }, b, " " + ((labels[b.value] && labels[b.value].id) || b.value))), error);
      // In the order they were ticked: what was named first stays first.
      let ticked = [];
      boxes.forEach((b) => b.addEventListener("change", () => {
        ticked = ticked.filter((v) => v !== b.value).concat(b.checked ? [b.value] : []);
      }));
      const w = {
        dom, error, path: pathOf,
        read: () => (ticked.length ? ticked.slice() : undefined),
        write: (values) => {
          ticked = (values || []).filter((v) => items.enum.includes(v));
          boxes.forEach((b) => { b.checked = ticked.includes(b.value); });
        },
        locate: () => w, refresh: () => { dom.dataset.pointer = pathOf(); },
      };
      w.refresh();
      return w;
    }
    const list = el("ol", { class: "items" });
    const entries = [];
    const add = el("button", { type: "button", class: "add", text: "+ Tambah " + labelOf(node, name).toLowerCase() });
    const dom = el("fieldset", { class: "array" }, el("legend", { text: labelOf(node, name) + (required ? " *" : "") }), list, add, error);
    const append = (value) => {
      const item = {};
      item.widget = makeWidget(items, name + " " + (entries.length + 1), true, () => pathOf() + "/" + entries.indexOf(item));
      const remove = el("button", { type: "button", class: "remove", text: "Hapus" });
      item.dom = el("li", {}, item.widget.dom, remove);
      remove.addEventListener("click", () => { entries.splice(entries.indexOf(item), 1); item.dom.remove(); w.refresh(); });
      entries.push(item);
      list.append(item.dom);
      if (value !== undefined) item.widget.write(value);
      w.refresh();
      return item;
    };
    add.addEventListener("click", () => append());
    const w = {
      dom, error, path: pathOf,
      read: () => {
        const v = entries.map((e) => e.widget.read()).filter((x) => x !== undefined);
        return v.length ? v : undefined;
      },
      write: (values) => { entries.splice(0).forEach((e) => e.dom.remove()); (values || []).forEach((v) => append(v)); },
      locate: (parts) => {
        if (!parts.length) return w;
        const e = entries[Number(parts[0])];
        return (e && e.widget.locate(parts.slice(1))) || w;
      },
      refresh: () => { dom.dataset.pointer = pathOf(); entries.forEach((e) => e.widget.refresh && e.widget.refresh()); },
    };
    w.refresh();
    return w;
  }

  // --- the page -------------------------------------------------------------------------------
  const picker = document.getElementById("type");
  const formBox = document.getElementById("form-fields");
  const form = document.getElementById("report-form");
  const status = document.getElementById("form-status");
  const outbox = document.getElementById("outbox-list");

  function show(typeName, payload, draftId, replaces) {
    const type = bundle.types.find((t) => t.name === typeName);
    if (!type) return;
    bundle.current = type;
    const widget = objectWidget(type.schema, null, true, () => "");
    // Who else should have it: agencies named as the report's audience (the API's
    // `recipients`); where no rule routes a report, naming one is how it reaches anyone.
    const others = Object.entries(bundle.agencies).filter(([id]) => id !== bundle.agency.id);
    const boxes = others.map(([id, n]) => el("input", { type: "checkbox", value: id }));
    const audienceError = errorSlot();
    const audience = el("fieldset", { class: "choices", "data-pointer": "/recipients" },
      el("legend", { text: "Kirim juga ke (boleh kosong)" }),
      boxes.map((b, i) => el("label", { class: "choice" }, b, " " + others[i][1])), audienceError);
    formBox.replaceChildren(widget.dom, audience);
    if (payload) widget.write(payload);
    current = {
      type, widget, draft: draftId || null, replaces: replaces || null,
      recipients: () => boxes.filter((b) => b.checked).map((b) => b.value),
      setRecipients: (ids) => boxes.forEach((b) => { b.checked = (ids || []).includes(b.value); }),
      audienceError,
    };
    picker.value = typeName;
    form.hidden = false;
  }

  function clearErrors() { formBox.querySelectorAll(".field-error").forEach((p) => say(p, "")); say(status, ""); }

  function showErrors(errors) {
    errors.forEach((e) => {
      const pointer = e.pointer || "";
      let slot = status;
      if (pointer.startsWith("/payload")) {
        const parts = pointer.split("/").slice(2).concat(e.property ? [e.property] : []);
        slot = current.widget.locate(parts).error;
      }
      else if (pointer === "/recipients" || pointer === "/tlp") slot = current.audienceError;
      say(slot, [slot.textContent, e.message].filter(Boolean).join(" "));
    });
    const first = formBox.querySelector(".field-error:not(:empty)");
    if (first) first.scrollIntoView({ block: "center" });
  }

  async function send(entry) {
    let answer;
    try {
      answer = await fetch(SEND, {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual", // signed out: the answer is a redirect, not the sign-in page
        headers: { "Content-Type": "application/json", "Accept-Language": "id", "X-CSRF-Token": CSRF, "Idempotency-Key": entry.key },
        body: JSON.stringify({
          type: entry.type, version: entry.version, payload: entry.payload,
          recipients: entry.recipients || [], draft: entry.draft || undefined,
        }),
      });
    } catch (offline) {
      return "pending"; // no answer (offline, or the answer was lost): the same key next time
    }
    if (answer.type === "opaqueredirect" || !(answer.headers.get("content-type") || "").includes("json")) return "signed-out";
    const body = await answer.json();
    if (answer.status === 202) { entry.answer = { id: body.id, routed_to: body.routed_to || [] }; delete entry.payload; return "sent"; }
    if (answer.status === 429 || answer.status >= 500) return "pending";
    if (answer.status === 401 || answer.status === 403) return "signed-out";
    entry.errors = (body.error && (body.error.details.length ? body.error.details : [{ pointer: "", message: body.error.message }])) || [];
    return "refused";
  }

  let retry = null;
  async function flush() {
    if (flushing) return;
    flushing = true;
    let waiting = false;
    try {
      for (const entry of await entries()) {
        if (entry.state !== "pending") continue;
        const outcome = await send(entry);
        if (outcome === "signed-out") { say(status, "Sesi berakhir: masuk lagi untuk mengirim laporan yang menunggu."); break; }
        if (outcome === "pending") { waiting = true; break; } // offline, or the answer was lost
        entry.state = outcome;
        await saveEntry(entry);
      }
    } finally {
      flushing = false;
      await drawOutbox();
    }
    // A lost answer brings no "online" event: try again in a few seconds while online.
    clearTimeout(retry);
    if (waiting && navigator.onLine) retry = setTimeout(flush, RETRY_MS);
  }

  const STATES = { pending: "Menunggu sinyal", sent: "Terkirim", refused: "Ditolak: perlu diperbaiki" };
  async function drawOutbox() {
    const list = await entries();
    outbox.replaceChildren(...list.slice().reverse().map((e) => {
      const when = new Date(e.at).toLocaleString("id-ID", { timeZone: "Asia/Jakarta" }) + " WIB";
      const item = el("li", { class: "entry " + e.state, "data-state": e.state },
        el("strong", { text: e.title }), " · " + when + " · ", el("span", { class: "state", text: STATES[e.state] }));
      if (e.answer) item.append(el("p", { class: "answer", text: "Nomor " + e.answer.id + " · ke: " + (e.answer.routed_to.join(", ") || "—") }));
      if (e.errors) {
        item.append(el("ul", {}, e.errors.map((x) => el("li", { text: (x.pointer ? x.pointer.replace(/^\/payload/, "") + ": " : "") + x.message }))));
        const fix = el("button", { type: "button", text: "Perbaiki" });
        fix.addEventListener("click", () => {
          show(e.type, e.payload, e.draft, e.id);
          current.setRecipients(e.recipients);
          showErrors(e.errors);
        });
        item.append(fix);
      }
      return item;
    }));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    clearErrors();
    const entry = {
      id: current.replaces || crypto.randomUUID(),
      key: crypto.randomUUID(),
      user: USER,
      at: new Date().toISOString(),
      type: current.type.name, version: current.type.version, title: current.type.title,
      payload: current.widget.read(), recipients: current.recipients(), draft: current.draft, state: "pending",
    };
    await saveEntry(entry);
    const outcome = await send(entry);
    if (outcome === "refused") {
      entry.state = "refused";
      await saveEntry(entry);
      current.replaces = entry.id;
      showErrors(entry.errors);
      say(status, "Laporan belum terkirim: perbaiki kolom yang ditandai.");
    } else if (outcome === "sent") {
      entry.state = "sent";
      await saveEntry(entry);
      say(status, "Terkirim. Nomor " + entry.answer.id + ".");
      show(current.type.name);
    } else {
      say(status, outcome === "signed-out" ? "Sesi berakhir: masuk lagi; laporan disimpan di kotak keluar." : "Tidak ada sinyal: laporan disimpan di kotak keluar dan dikirim otomatis saat online.");
      show(current.type.name);
    }
    await drawOutbox();
  });

  picker.addEventListener("change", () => show(picker.value));
  window.addEventListener("online", flush);

  (async () => {
    bundle = await (await fetch(BUNDLE, { credentials: "same-origin" })).json();
    const params = new URLSearchParams(location.search);
    const draftId = params.get("draft");
    if (draftId) {
      const draft = await (await fetch(root.dataset.drafts + "/" + encodeURIComponent(draftId) + ".json", { credentials: "same-origin" })).json();
      show(draft.type || bundle.types[0].name, draft.payload, draft.id);
      // A draft's problems point into the payload; the API's into the whole submission.
      showErrors((draft.problems || []).map((p) => ({ ...p, pointer: p.pointer ? "/payload" + p.pointer : "" })));
    } else {
      show(params.get("type") || picker.value || bundle.types[0].name);
    }
    root.dataset.ready = "true";
    await drawOutbox();
    if (navigator.onLine) flush();
    if ("serviceWorker" in navigator) navigator.serviceWorker.register(root.dataset.worker, { scope: root.dataset.scope }).catch(() => {});
  })();
})();

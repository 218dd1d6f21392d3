// The field form's service worker: keeps the form, its script and its data so that the
// form opens without a signal; every GET goes to the network first and falls back to what
// was kept. Reports are never cached here: the page's encrypted outbox holds them.
"use strict";
const CACHE = "exchange-field-v1";
const SHELL = [
  "/console/field",
  "/console/field/bundle.json",
  "/console/field/manifest.webmanifest",
  "/console/static/field.js",
  "/console/static/field.css",
  "/console/static/console.css",
  "/console/static/icon.svg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  const kept = url.origin === self.location.origin
    && (url.pathname.startsWith("/console/field") || url.pathname.startsWith("/console/static/"));
  if (request.method !== "GET" || !kept || url.pathname.startsWith("/console/field/drafts")) return;
  event.respondWith(
    fetch(request)
      .then((answer) => {
        if (answer.ok && !answer.redirected) {
          const copy = answer.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return answer;
      })
      .catch(() => caches.match(request, { ignoreSearch: url.pathname === "/console/field" })
        .then((found) => found || Response.error())),
  );
});

// Dicomite portal behaviour. Loaded as a file (the CSP forbids inline scripts).
"use strict";

// Copy buttons: <button class="copy" data-copy-target="ID">: copies the target's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const target = document.getElementById(button.dataset.copyTarget);
  if (!target) return;
  const text = target.value !== undefined ? target.value : target.textContent;
  try {
    await navigator.clipboard.writeText(text.trim());
    button.textContent = "Copied";
  } catch (error) {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy to clipboard"; }, 2000);
});

// Forms with data-confirm ask before they are sent (delete, consent, revoke).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Expiry select on "Add a client secret": custom dates only when "Custom" is chosen.
document.addEventListener("change", (event) => {
  if (event.target.id !== "expires") return;
  const custom = document.getElementById("custom-dates");
  if (custom) custom.hidden = event.target.value !== "custom";
});

// Selects marked data-submit-on-change send their form at once (a federated credential's
// scenario: the page shows that scenario's fields).
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-submit-on-change]")) event.target.form.requestSubmit();
});

// DICOM upload (dicom_upload.py): drag and drop (or choose) files, sent one by one as
// application/dicom with overall progress. The server answers {stored, message, reason}; the
// studies list refreshes itself on "dicom-uploaded" (hx-trigger in dicom_studies.html).
function uploadAnswer(request) {
  try {
    const answer = JSON.parse(request.responseText);
    if (typeof answer.message === "string") return { ok: Boolean(answer.stored), message: answer.message };
  } catch (error) { /* not JSON: an error page (expired session or form) */ }
  const hint = request.status === 401 || request.status === 403 ? " Reload the page and try again." : "";
  return { ok: false, message: `The upload was refused (HTTP ${request.status}).${hint}` };
}
function setUpDropzone(zone) {
  const input = zone.querySelector("input[type=file]");
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const send = (file, done, count) => new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", zone.dataset.endpoint);
    request.setRequestHeader("Content-Type", "application/dicom");
    request.setRequestHeader("X-CSRF-Token", zone.dataset.csrf);
    request.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = (done + e.loaded / e.total) / count; };
    request.onload = () => resolve(uploadAnswer(request));
    request.onerror = () => resolve({ ok: false, message: "The connection failed." });
    request.send(file);
  });
  const upload = async (files) => {
    const count = files.length;
    if (!count) return;
    let stored = 0; const problems = [];
    progress.hidden = false; progress.value = 0; status.dataset.done = "false";
    for (const [index, file] of [...files].entries()) {
      status.textContent = `Uploading ${index + 1} of ${count}: ${file.name}`;
      const result = await send(file, index, count);
      if (result.ok) stored += 1;
      if (!result.ok || result.message !== "Stored.") problems.push(`${file.name}: ${result.message}`);
    }
    progress.value = 1;
    status.textContent = `Stored ${stored} of ${count}.` + (problems.length ? ` ${problems.join(" ")}` : "");
    status.dataset.done = "true";
    input.value = "";
    if (stored) document.dispatchEvent(new CustomEvent("dicom-uploaded"));
  };
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload(e.dataTransfer.files); });
  input.addEventListener("change", () => upload(input.files));
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".dropzone").forEach(setUpDropzone);
});

// --- Certificates & secrets: a custom expiry ends at most 24 months after its start. ---
function limitSecretEnd() {
  const start = document.getElementById("start");
  const end = document.getElementById("end");
  if (!start || !end || !document.getElementById("custom-dates")) return;
  const first = new Date(`${start.value}T00:00:00Z`);
  if (Number.isNaN(first.getTime())) return;
  const last = new Date(first);
  last.setUTCMonth(last.getUTCMonth() + 24);
  end.min = start.value;
  end.max = last.toISOString().slice(0, 10);
}
document.addEventListener("change", (event) => {
  if (event.target.id === "start") limitSecretEnd();
});
document.addEventListener("DOMContentLoaded", limitSecretEnd);

// --- Users: the password field shows only when "Let me create the password" is chosen. ---
function showTypedPassword(fieldset) {
  const generate = fieldset.querySelector("input[name=password_choice][value=generate]");
  const typed = fieldset.querySelector("[data-typed-password]");
  if (generate && typed) typed.hidden = generate.checked;
}
document.addEventListener("change", (event) => {
  if (event.target.name !== "password_choice") return;
  const fieldset = event.target.closest(".password-choice");
  if (fieldset) showTypedPassword(fieldset);
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".password-choice").forEach(showTypedPassword);
});

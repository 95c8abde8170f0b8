// The console works without this file; it adds copying to the clipboard, confirmations before
// destructive changes, and submitting the VE selector on change. (No inline script anywhere:
// the Content-Security-Policy allows only this file.)
"use strict";

function announce(target, message) {
  // A role="status" element: screen readers read the confirmation, everyone sees it.
  if (!target) target = document.getElementById("announcer");
  target.textContent = "";
  window.setTimeout(function () { target.textContent = message; }, 50);
}

async function copyFrom(button) {
  var input = document.getElementById(button.dataset.copy);
  var status = button.closest(".callback, .created");
  status = status ? status.querySelector(".copied") : null;
  var label = button.textContent.trim().replace(/^Copy /, "");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (err) {
    // No clipboard permission (or an old browser): select it so Ctrl-C copies it.
    input.focus();
    input.select();
    announce(status, "Could not copy: the " + label + " is selected, press Ctrl-C.");
    return;
  }
  button.classList.add("done");
  announce(status, "Copied the " + label + " to the clipboard.");
  window.setTimeout(function () { button.classList.remove("done"); }, 2000);
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (button) copyFrom(button);
});

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("change", function (event) {
  var form = event.target.closest("form[data-autosubmit]");
  if (form && event.target.tagName === "SELECT") form.submit();
});

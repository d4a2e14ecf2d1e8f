/* Gatehouse pages: small conveniences on top of pages that work without JavaScript.
   - [data-copy-target]: a "Copy" button (hidden until this script shows it) copies the text
     of the element with that id (a key without its spaces; codes one per line).
   - button.print: prints the page (the print stylesheet shows only the codes).
   - [data-countdown]: the lockout's time left, counted down; at zero the form is enabled
     again. Without JavaScript the server says the same with the right time on reload. */
(function () {
  "use strict";

  function status(button, text) {
    var box = button.parentNode.querySelector(".copy-status");
    if (box) { box.textContent = text; }
  }

  function textOf(target) {
    var items = target.querySelectorAll("li");
    if (items.length) {
      return Array.prototype.map.call(items, function (li) { return li.textContent.trim(); }).join("\n") + "\n";
    }
    return target.textContent.replace(/\s+/g, "");
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(textOf(target)).then(function () {
      status(button, button.getAttribute("data-copied"));
    });
  }

  function format(seconds, template) {
    var minutes = Math.floor(seconds / 60), rest = seconds % 60;
    return (minutes ? template.min : template.s).replace("{m}", minutes).replace("{s}", rest);
  }

  function countdown(box) {
    var left = parseInt(box.getAttribute("data-countdown"), 10);
    var wait = box.querySelector(".wait");
    var fieldset = box.closest("fieldset");
    var template = {
      min: box.getAttribute("data-format-min") || "{m} min {s} s",
      s: box.getAttribute("data-format-s") || "{s} s"
    };
    var timer = setInterval(function () {
      left -= 1;
      if (left > 0) {
        if (wait) { wait.textContent = format(left, template); }
        return;
      }
      clearInterval(timer);
      box.textContent = box.getAttribute("data-done");
      if (fieldset) { fieldset.disabled = false; }
    }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy-target]"), function (button) {
      if (!navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("button.print"), function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-countdown]"), countdown);
  });
})();

// Console editors: variable chips insert "{{ name }}" at the cursor; textareas with data-preview-url get a live
// preview rendered by the server (the same sandboxed renderer the sender uses). Our own code, no libraries.
(function () {
  "use strict";

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || 0;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    textarea.focus();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.querySelectorAll("[data-chips-for]").forEach(function (box) {
    var textarea = document.getElementById(box.getAttribute("data-chips-for"));
    box.addEventListener("click", function (event) {
      var chip = event.target.closest("[data-variable]");
      if (chip && textarea) {
        insertAtCursor(textarea, "{{ " + chip.getAttribute("data-variable") + " }}");
      }
    });
  });

  var csrf = document.querySelector("input[name=csrf_token]");

  document.querySelectorAll("textarea[data-preview-url]").forEach(function (textarea) {
    var output = document.getElementById(textarea.id + "-preview");
    var problem = document.getElementById(textarea.id + "-preview-error");
    var timer = null;
    var sequence = 0;
    // data-preview-with="id,id": other fields the preview depends on (a FAQ answer's title).
    var others = (textarea.getAttribute("data-preview-with") || "").split(",").map(function (id) {
      return document.getElementById(id.trim());
    }).filter(Boolean);

    function refresh() {
      var mine = ++sequence;
      var body = new FormData();
      body.append(textarea.getAttribute("data-preview-field") || textarea.name, textarea.value);
      others.forEach(function (field) { body.append(field.name, field.value); });
      if (csrf) { body.append("csrf_token", csrf.value); }
      if (textarea.hasAttribute("data-optional")) { body.append("optional", "1"); }
      fetch(textarea.getAttribute("data-preview-url"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (result) {
          if (mine !== sequence) { return; }  // an older answer arriving late
          output.textContent = result.ok ? result.preview : "";
          problem.textContent = result.ok ? "" : result.error;
          textarea.setAttribute("aria-invalid", result.ok ? "false" : "true");
        })
        .catch(function () { problem.textContent = "Não foi possível atualizar a prévia agora."; });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    }

    textarea.addEventListener("input", later);
    others.forEach(function (field) { field.addEventListener("input", later); });
  });
})();

// WhatsApp template mapping (console/whatsapp): choosing a template shows its placeholders at once, from the
// <template data-slots-for> elements the page carries (without JavaScript, the "Mostrar os marcadores" button
// asks the server); any change asks the server for the preview, checked as saving checks it.
(function () {
  "use strict";

  document.querySelectorAll("form[data-mapping-preview-url]").forEach(function (form) {
    var select = form.querySelector("[data-mapping-template]");
    var fields = form.querySelector("[data-mapping-fields]");
    var output = form.querySelector("[data-mapping-output]");
    var problem = form.querySelector("[data-mapping-problem]");
    var sequence = 0;
    if (!select || !fields || !output || !problem) { return; }
    form.querySelectorAll("[data-without-js]").forEach(function (element) { element.hidden = true; });

    function refresh() {
      var mine = ++sequence;
      fetch(form.getAttribute("data-mapping-preview-url"),
            { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (result) {
          if (mine !== sequence) { return; }  // an older answer arriving late
          output.textContent = result.error ? "" : (result.text || output.getAttribute("data-empty") || "");
          problem.textContent = result.error || "";
        })
        .catch(function () { problem.textContent = "Não foi possível atualizar a prévia agora."; });
    }

    select.addEventListener("change", function () {
      var slots = form.querySelector('template[data-slots-for="' + select.value + '"]');
      fields.replaceChildren();
      if (slots) { fields.appendChild(slots.content.cloneNode(true)); }
      refresh();
    });
    fields.addEventListener("change", refresh);
  });
})();

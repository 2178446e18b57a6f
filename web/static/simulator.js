/*
 * WhatsApp simulator: chats as a shopper through the real webhook.
 *
 * Sending: build the form Twilio posts for an inbound WhatsApp message, have the server sign it
 * (POST /simulator/sign) and post it, signed, to /webhooks/whatsapp.
 * Receiving: poll GET /simulator/messages every 1.5 s and render the conversation.
 *
 * Every text from the server is put in the page with textContent / createTextNode, never as HTML.
 * No dependencies, no build step.
 */
(function () {
  "use strict";

  var POLL_MS = 1500;
  var PAGE_SIZE = 200; // the server's maximum per answer
  var LOOKBACK = 5; // re-read the last few messages: late commits and status changes
  var WATCH_WINDOW = 50; // only the last messages are re-read for status changes

  // Statuses after which an outbound message never changes.
  var FINAL = { received: true, outbox: true, read: true, failed: true, undelivered: true, blocked: true };

  var STATUS_VIEW = {
    pending: { icon: "⏳", label: "Na fila" },
    accepted: { icon: "⏳", label: "Aceita pela Twilio" },
    queued: { icon: "⏳", label: "Na fila da Twilio" },
    sending: { icon: "⏳", label: "Enviando" },
    unknown: { icon: "⏳", label: "Sem confirmação do envio" },
    sent: { icon: "✓", label: "Enviada" },
    delivered: { icon: "✓✓", label: "Entregue" },
    read: { icon: "✓✓", label: "Lida" },
    failed: { icon: "✗", label: "Falhou" },
    undelivered: { icon: "✗", label: "Não entregue" },
    blocked: { icon: "✗", label: "Não enviada" },
    outbox: { icon: "✓", label: "simulado" }
  };

  var REASONS = {
    opted_out: "o cliente pediu para não receber mensagens",
    outside_24h_window_no_template: "fora da janela de 24 h e sem modelo aprovado",
    template_variables_missing: "faltam variáveis do modelo"
  };

  var KIND_LABELS = {
    recovery: "Recuperação de venda",
    seller: "Vendedor(a)",
    system: "Sistema"
  };

  var root = document.getElementById("simulator");
  if (!root) {
    return;
  }
  var config = root.dataset;
  var list = document.getElementById("sim-messages");
  var empty = document.getElementById("sim-empty");
  var identityForm = document.getElementById("sim-identity");
  var phoneInput = document.getElementById("sim-phone");
  var nameInput = document.getElementById("sim-name");
  var phoneError = document.getElementById("sim-phone-error");
  var headerSub = document.getElementById("sim-header-sub");
  var composer = document.getElementById("sim-composer");
  var textInput = document.getElementById("sim-text");
  var sendButton = document.getElementById("sim-send");
  var sendError = document.getElementById("sim-send-error");

  var state = {
    phone: null, // E.164 of the shopper being simulated
    generation: 0, // bumped on every change of shopper; stale answers are dropped
    ids: [], // message ids shown, ascending
    byId: {}, // id -> {data, element}
    timer: null,
    polling: false
  };

  // --- phone numbers -------------------------------------------------------------------------------

  // The server has the real rules (core.phones.normalize_phone); this only shapes what Twilio would send.
  function toE164(raw) {
    var text = (raw || "").trim();
    var digits = text.replace(/\D/g, "");
    if (!digits) {
      return "";
    }
    if (text.charAt(0) !== "+" && digits.indexOf("55") !== 0 && (digits.length === 10 || digits.length === 11)) {
      digits = "55" + digits; // "11 99999-0001": a Brazilian number without the country code
    }
    return "+" + digits;
  }

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    window.crypto.getRandomValues(values);
    return Array.prototype.map.call(values, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // --- errors --------------------------------------------------------------------------------------

  function show(element, text) {
    element.textContent = text || "";
    element.hidden = !text;
  }

  function readError(response) {
    return response.json().then(
      function (body) {
        return body || {};
      },
      function () {
        return {};
      }
    );
  }

  // --- rendering -----------------------------------------------------------------------------------

  // WhatsApp formatting: *bold*, _italic_, ~strikethrough~, and http(s) links.
  var TOKEN = /(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]]|\*[^\s*](?:[^*\n]*[^\s*])?\*|_[^\s_](?:[^_\n]*[^\s_])?_|~[^\s~](?:[^~\n]*[^\s~])?~)/g;
  var TAGS = { "*": "strong", _: "em", "~": "s" };

  function appendFormatted(parent, text) {
    var last = 0;
    var match;
    TOKEN.lastIndex = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      if (match.index > last) {
        parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      var token = match[0];
      var node;
      if (token.indexOf("http") === 0) {
        node = document.createElement("a");
        node.href = token; // always http(s): the pattern allows nothing else
        node.target = "_blank";
        node.rel = "noopener noreferrer";
        node.textContent = token;
      } else {
        node = document.createElement(TAGS[token.charAt(0)]);
        node.textContent = token.slice(1, -1);
      }
      parent.appendChild(node);
      last = TOKEN.lastIndex;
    }
    if (last < text.length) {
      parent.appendChild(document.createTextNode(text.slice(last)));
    }
  }

  function formatTime(iso) {
    var date = iso ? new Date(iso) : null;
    if (!date || isNaN(date.getTime())) {
      return "";
    }
    return date.toLocaleTimeString("pt-BR", { hour: "2-digit", minute: "2-digit" });
  }

  function reasonText(reason) {
    if (!reason) {
      return "";
    }
    var code = reason.split(":")[0];
    return REASONS[code] ? REASONS[code] + (reason.length > code.length ? " (" + reason + ")" : "") : reason;
  }

  function buildBubble(message) {
    var outbound = message.direction === "outbound";
    var item = document.createElement("li");
    item.className = "msg " + (outbound ? "msg--store" : "msg--shopper");
    item.dataset.id = String(message.id);
    if (message.kind === "recovery") {
      item.classList.add("msg--recovery");
    }

    if (outbound && KIND_LABELS[message.kind]) {
      var label = document.createElement("div");
      label.className = "msg-label";
      label.textContent = KIND_LABELS[message.kind];
      item.appendChild(label);
    }

    var text = document.createElement("div");
    text.className = "msg-text";
    if (message.body) {
      appendFormatted(text, message.body);
    } else {
      text.classList.add("msg-text--empty");
      text.textContent = "(mensagem sem texto, por exemplo um modelo aprovado)";
    }
    item.appendChild(text);

    var meta = document.createElement("div");
    meta.className = "msg-meta";
    var time = document.createElement("time");
    time.dateTime = message.created_at || "";
    time.textContent = formatTime(message.created_at);
    meta.appendChild(time);

    if (outbound) {
      var view = STATUS_VIEW[message.status] || { icon: "?", label: message.status };
      var status = document.createElement("span");
      status.className = "msg-status msg-status--" + message.status;
      status.title = view.label;
      status.setAttribute("aria-label", view.label);
      status.textContent = view.icon;
      meta.appendChild(status);
      if (message.status === "outbox") {
        var simulated = document.createElement("span");
        simulated.className = "msg-simulated";
        simulated.textContent = "simulado";
        meta.appendChild(simulated);
      }
    }
    item.appendChild(meta);

    var failed = message.status === "failed" || message.status === "undelivered" || message.status === "blocked";
    if (outbound && failed) {
      item.classList.add("msg--failed");
      var reason = document.createElement("div");
      reason.className = "msg-reason";
      var view2 = STATUS_VIEW[message.status];
      reason.textContent = view2.label + (message.error_reason ? ": " + reasonText(message.error_reason) : "");
      item.appendChild(reason);
    }
    return item;
  }

  function sameView(a, b) {
    return a.status === b.status && a.body === b.body && a.error_reason === b.error_reason && a.kind === b.kind;
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function render(messages) {
    if (!messages.length) {
      return;
    }
    var stick = nearBottom();
    var added = false;
    messages.forEach(function (message) {
      var known = state.byId[message.id];
      if (known) {
        if (!sameView(known.data, message)) {
          var replacement = buildBubble(message);
          list.replaceChild(replacement, known.element);
          state.byId[message.id] = { data: message, element: replacement };
        }
        return;
      }
      var element = buildBubble(message);
      // Keep id order even when a message committed late arrives after a newer one.
      var position = state.ids.length;
      while (position > 0 && state.ids[position - 1] > message.id) {
        position -= 1;
      }
      var before = position < state.ids.length ? state.byId[state.ids[position]].element : null;
      list.insertBefore(element, before);
      state.ids.splice(position, 0, message.id);
      state.byId[message.id] = { data: message, element: element };
      added = true;
    });
    empty.hidden = state.ids.length > 0;
    if (added && stick) {
      list.scrollTop = list.scrollHeight;
    }
  }

  function clearConversation() {
    state.ids.forEach(function (id) {
      var element = state.byId[id].element;
      if (element.parentNode) {
        element.parentNode.removeChild(element);
      }
    });
    state.ids = [];
    state.byId = {};
    empty.hidden = false;
  }

  // --- polling -------------------------------------------------------------------------------------

  // Where the next poll starts: a few messages back, or before the oldest recent one still changing.
  function pollCursor() {
    var ids = state.ids;
    if (!ids.length) {
      return 0;
    }
    var index = ids.length - LOOKBACK - 1;
    var after = index >= 0 ? ids[index] : 0;
    for (var i = Math.max(0, ids.length - WATCH_WINDOW); i < ids.length; i += 1) {
      var message = state.byId[ids[i]].data;
      if (!FINAL[message.status]) {
        after = Math.min(after, ids[i] - 1);
        break;
      }
    }
    return Math.max(0, after);
  }

  function fetchPage(phone, after) {
    var url = config.messagesUrl + "?phone=" + encodeURIComponent(phone) + "&after=" + after;
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(function (response) {
      if (!response.ok) {
        return readError(response).then(function (body) {
          var error = new Error(body.message || "HTTP " + response.status);
          error.field = body.field;
          throw error;
        });
      }
      return response.json();
    });
  }

  function pollOnce() {
    var generation = state.generation;
    var phone = state.phone;

    function step(after) {
      return fetchPage(phone, after).then(function (body) {
        if (generation !== state.generation) {
          return null; // the shopper changed meanwhile
        }
        var messages = body.messages || [];
        render(messages);
        if (messages.length >= PAGE_SIZE) {
          return step(messages[messages.length - 1].id); // more waiting: read the next page now
        }
        return null;
      });
    }

    return step(pollCursor()).then(
      function () {
        if (generation === state.generation) {
          show(sendError, "");
        }
      },
      function (error) {
        if (generation !== state.generation) {
          return;
        }
        if (error.field === "phone") {
          show(phoneError, error.message);
          state.phone = null; // stop polling until the number is fixed
        } else {
          show(sendError, "Sem conexão com o servidor; tentando de novo…");
        }
      }
    );
  }

  function schedule(delay) {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(tick, delay);
  }

  function tick() {
    if (!state.phone || state.polling) {
      schedule(POLL_MS);
      return;
    }
    state.polling = true;
    pollOnce().then(function () {
      state.polling = false;
      schedule(POLL_MS);
    });
  }

  function pollNow() {
    schedule(0); // if a poll is in flight, tick() waits for it
  }

  // --- shopper identity ----------------------------------------------------------------------------

  function useIdentity() {
    var phone = toE164(phoneInput.value);
    show(phoneError, "");
    state.generation += 1;
    clearConversation();
    if (!phone) {
      show(phoneError, "Informe o telefone do cliente, por exemplo +55 11 99999-0001.");
      state.phone = null;
      return;
    }
    state.phone = phone;
    headerSub.textContent = "conversando como " + phone + (nameInput.value.trim() ? " (" + nameInput.value.trim() + ")" : "");
    // Claim the number first, so a shopper the store wrote to before they wrote (the demo's web-cart
    // abandoner) shows their conversation straight away.
    var generation = state.generation;
    postJson(config.claimUrl, { phone: phone }).then(function (response) {
      if (generation !== state.generation) {
        return;
      }
      if (!response.ok) {
        return readError(response).then(function (body) {
          show(phoneError, body.message || "Não foi possível usar este número.");
        });
      }
      pollNow();
    }, function () {
      pollNow();
    });
  }

  identityForm.addEventListener("submit", function (event) {
    event.preventDefault();
    useIdentity();
  });
  phoneInput.addEventListener("change", useIdentity);
  nameInput.addEventListener("change", function () {
    if (state.phone) {
      headerSub.textContent = "conversando como " + state.phone + (nameInput.value.trim() ? " (" + nameInput.value.trim() + ")" : "");
    }
  });

  // --- sending -------------------------------------------------------------------------------------

  function inboundForm(body) {
    var phone = state.phone;
    return {
      From: "whatsapp:" + phone,
      To: config.storeNumber,
      Body: body,
      MessageSid: "SM" + randomHex(16),
      AccountSid: config.accountSid,
      ProfileName: nameInput.value.trim(),
      WaId: phone.replace(/\D/g, ""),
      NumMedia: "0",
      SmsStatus: "received",
      NumSegments: "1",
      ApiVersion: "2010-04-01"
    };
  }

  function postJson(url, payload) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload)
    });
  }

  function send(body) {
    var params = inboundForm(body);
    return postJson(config.signUrl, { params: params })
      .then(function (response) {
        if (!response.ok) {
          return readError(response).then(function (error) {
            if (error.field === "phone") {
              show(phoneError, error.message);
              throw new Error("Corrija o telefone do cliente para enviar.");
            }
            throw new Error(error.message || "Não foi possível assinar a mensagem (HTTP " + response.status + ").");
          });
        }
        return response.json();
      })
      .then(function (signed) {
        return fetch(signed.url || config.webhookPath, {
          method: "POST",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signed.signature
          },
          body: new URLSearchParams(params).toString()
        });
      })
      .then(function (response) {
        if (response.ok) {
          return;
        }
        return readError(response).then(function (error) {
          if (response.status === 403) {
            throw new Error("O webhook recusou a assinatura (HTTP 403).");
          }
          var detail = error.field ? error.field + ": " + (error.message || "") : error.message || error.error || "";
          throw new Error("O webhook respondeu HTTP " + response.status + (detail ? " — " + detail : "") + ".");
        });
      });
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = textInput.value;
    if (!body.trim()) {
      return;
    }
    if (!state.phone) {
      show(phoneError, phoneError.textContent || "Informe um telefone válido antes de enviar.");
      return;
    }
    sendButton.disabled = true;
    show(sendError, "");
    send(body).then(
      function () {
        textInput.value = "";
        autosize();
        sendButton.disabled = false;
        textInput.focus();
        pollNow();
      },
      function (error) {
        sendButton.disabled = false;
        show(sendError, error.message || "Falha ao enviar a mensagem.");
      }
    );
  });

  // Enter sends, Shift+Enter breaks the line (as in WhatsApp Web).
  textInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof composer.requestSubmit === "function") {
        composer.requestSubmit();
      } else {
        composer.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    }
  });

  function autosize() {
    textInput.style.height = "auto";
    textInput.style.height = Math.min(textInput.scrollHeight, 140) + "px";
  }
  textInput.addEventListener("input", autosize);

  useIdentity();
})();

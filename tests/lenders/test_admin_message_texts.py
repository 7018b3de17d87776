"""The message texts in the back office: every kind and language with its version, the
lender's admin rewriting one with the server's preview, the versions kept; no one else
rewrites them, and another lender's admin sees none of it."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.lenders.messages import KINDS, LANGUAGES
from apps.lenders.models import Membership, MessageTemplate
from tests.lenders.factories import message_text_for

pytestmark = pytest.mark.django_db

Kind = MessageTemplate.Kind


def edit_url(lender, kind: str = Kind.RECEIPT, language: str = "en") -> str:
    return reverse("admin:lenders_messagetemplate_edit", args=[lender.pk, kind, language])


def preview_url(lender, kind: str = Kind.RECEIPT, language: str = "en") -> str:
    return reverse("admin:lenders_messagetemplate_preview", args=[lender.pk, kind, language])


@pytest.fixture
def lender_admin(lender_a, make_agent):
    return make_agent(lender_a, role=Membership.Role.LENDER_ADMIN, username="wanjiru")


def test_the_list_shows_every_kind_and_language_with_its_version_and_author(
    lender_a, lender_admin, verified_client
) -> None:
    message_text_for(lender_a, Kind.LOGIN_CODE, "es", "{lender}: {code}", lender_admin)
    client = verified_client(lender_admin)
    response = client.get(reverse("admin:lenders_messagetemplate_changelist"))
    assert response.status_code == 200
    rows = response.context["texts"]
    assert len(rows) == len(KINDS) * len(LANGUAGES) == 63
    login_es = next(r for r in rows if r["kind"] == "Login code" and r["language"] == "Español")
    assert (login_es["in_force"].version, login_es["in_force"].changed_by) == (1, lender_admin)
    assert login_es["url"] == edit_url(lender_a, Kind.LOGIN_CODE, "es")
    page = response.content.decode()
    assert "version 1" in page
    assert "wanjiru" in page
    assert "shipped text" in page


def test_the_admin_rewrites_a_text_and_it_is_in_force_and_audited(
    lender_a, lender_admin, verified_client
) -> None:
    client = verified_client(lender_admin)
    page = client.get(edit_url(lender_a))
    assert page.status_code == 200
    shipped = "We received {amount}. Thank you. Left to pay: {balance}. {offline_note}"
    assert page.context["form"].initial["text"] == shipped
    assert page.context["preview"].text.startswith("We received KES 1,250.00. Thank you.")
    text = "{lender}: thank you for {amount}! Balance {balance}. {offline_note}"
    response = client.post(edit_url(lender_a), {"text": text})
    assert response.status_code == 302
    saved = MessageTemplate.objects.get(lender=lender_a)
    assert (saved.kind, saved.language, saved.version, saved.text, saved.changed_by) == (
        "receipt",
        "en",
        1,
        text,
        lender_admin,
    )
    event = AuditEvent.objects.get(action="lenders.message_template.changed")
    assert (event.actor_id, event.data["new"]) == (str(lender_admin.pk), {"text": text})
    again = client.get(edit_url(lender_a))
    assert again.context["form"].initial["text"] == text
    assert [v.version for v in again.context["history"]] == [1]
    assert "Version 1 is in force." in [str(m) for m in again.context["messages"]]


def test_an_unknown_placeholder_is_refused_on_the_form_and_nothing_is_saved(
    lender_a, lender_admin, verified_client
) -> None:
    client = verified_client(lender_admin)
    response = client.post(edit_url(lender_a), {"text": "Paid {amount}. See {pay_link}."})
    assert response.status_code == 200
    assert "Unknown placeholder {pay_link}" in response.content.decode()
    assert response.context["preview"].text.endswith("See {pay_link}.")
    assert not MessageTemplate.objects.exists()


def test_the_preview_answers_what_the_text_sends_and_how_it_counts(
    lender_a, lender_admin, verified_client
) -> None:
    client = verified_client(lender_admin)
    answer = client.post(
        preview_url(lender_a, Kind.LOGIN_CODE, "zh-hans"), {"text": "{lender}的验证码 {code}"}
    ).json()
    assert answer["text"] == "Lender A的验证码 482913"
    assert answer["count"] == {
        "encoding": "UCS-2",
        "characters": 19,
        "units": 19,
        "segments": 1,
        "outside_gsm7": ["的", "验", "证", "码"],
    }
    assert (answer["longest"]["segments"], answer["max_segments"], answer["errors"]) == (1, 2, [])
    refused = client.post(preview_url(lender_a, Kind.LOGIN_CODE), {"text": "Code {cod}"}).json()
    assert refused["text"] == "Code {cod}"
    assert refused["longest"] is None
    assert [e.split(":")[0] for e in refused["errors"]] == [
        "Unknown placeholder {cod}",
        "This message must contain {code}.",
    ]
    assert client.get(preview_url(lender_a)).status_code == 405


def test_an_agent_reads_the_texts_but_does_not_rewrite_them(
    lender_a, make_agent, verified_client
) -> None:
    client = verified_client(make_agent(lender_a, role=Membership.Role.SUPERVISOR))
    listing = client.get(reverse("admin:lenders_messagetemplate_changelist"))
    assert listing.status_code == 200
    assert all(row["url"] == "" for row in listing.context["texts"])
    assert client.get(edit_url(lender_a)).status_code == 403
    assert client.post(edit_url(lender_a), {"text": "{amount}"}).status_code == 403
    assert client.post(preview_url(lender_a), {"text": "{amount}"}).status_code == 403
    assert not MessageTemplate.objects.exists()


def test_another_lenders_admin_can_neither_see_nor_rewrite_the_texts(
    lender_a, lender_b, lender_admin, make_agent, verified_client
) -> None:
    own = message_text_for(lender_a, Kind.DUE_TODAY, "en", "{amount} today", lender_admin)
    client = verified_client(make_agent(lender_b, role=Membership.Role.LENDER_ADMIN))
    listing = client.get(reverse("admin:lenders_messagetemplate_changelist"))
    assert own.pk not in {row.pk for row in listing.context["cl"].result_list}
    assert "{amount} today" not in listing.content.decode()
    assert client.get(edit_url(lender_a, Kind.DUE_TODAY)).status_code == 404
    response = client.post(edit_url(lender_a, Kind.DUE_TODAY), {"text": "Hacked {amount}"})
    assert response.status_code == 404
    assert client.post(preview_url(lender_a), {"text": "{lender}"}).status_code == 404
    view = reverse("admin:lenders_messagetemplate_change", args=[own.pk])
    assert client.get(view).status_code == 404
    assert list(MessageTemplate.objects.values_list("text", flat=True)) == ["{amount} today"]


def test_an_operator_picks_the_lender_whose_texts_to_edit(
    lender_a, lender_b, operator, verified_client
) -> None:
    client = verified_client(operator)
    url = reverse("admin:lenders_messagetemplate_changelist")
    assert "texts" not in client.get(url).context
    chosen = client.get(url, {"lender__id__exact": lender_b.pk})
    assert chosen.context["texts_lender"] == lender_b
    assert chosen.context["texts"][0]["url"] == edit_url(lender_b, Kind.DUE_SOON, "en")


def test_a_version_is_read_only_in_the_back_office(lender_a, lender_admin, verified_client) -> None:
    saved = message_text_for(lender_a, Kind.DUE_TODAY, "en", "{amount} today", lender_admin)
    client = verified_client(lender_admin)
    url = reverse("admin:lenders_messagetemplate_change", args=[saved.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"text": "changed"}).status_code == 403
    assert client.get(reverse("admin:lenders_messagetemplate_add")).status_code == 403


def test_the_pages_speak_the_admins_language(lender_a, lender_admin, verified_client) -> None:
    client = verified_client(lender_admin)
    listing = client.get(
        reverse("admin:lenders_messagetemplate_changelist"), HTTP_ACCEPT_LANGUAGE="es"
    ).content.decode()
    assert "Los textos que Lender A envía a sus clientes" in listing
    assert "Recibo de pago" in listing
    page = client.get(edit_url(lender_a, Kind.RECEIPT, "es"), HTTP_ACCEPT_LANGUAGE="es")
    assert "Guardar como versión nueva" in page.content.decode()
    assert page.context["preview"].text.startswith("Recibimos KES 1,250.00. Gracias.")
    refused = client.post(
        preview_url(lender_a), {"text": "{monto}"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).json()
    assert refused["errors"][0].startswith("未知的占位符 {monto}")

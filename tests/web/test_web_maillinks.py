from __future__ import annotations

import jinja2

from tests.web_fakes import KEY, T0
from watchtower.notify.sanitize import clean_html
from watchtower.web.maillinks import feedback_links_html, feedback_links_text, install_filters
from watchtower.web.tokens import feedback_links


def test_html_links_survive_the_email_sanitiser() -> None:
    links = feedback_links("https://wt.example.org", 9, KEY, T0)
    html = str(feedback_links_html(links))
    assert f'<a href="{links["relevant"]}">Relevant</a>' in html
    assert f'<a href="{links["not_relevant"]}">Not relevant</a>' in html
    cleaned = clean_html(html)
    assert links["relevant"] in cleaned and links["not_relevant"] in cleaned


def test_text_links() -> None:
    links = feedback_links("https://wt.example.org", 9, KEY, T0)
    text = feedback_links_text(links)
    assert text == f"   Relevant: {links['relevant']}\n   Not relevant: {links['not_relevant']}\n"


def test_nothing_without_public_url_and_no_unsafe_links() -> None:
    assert str(feedback_links_html(None)) == "" and feedback_links_text(None) == ""
    hostile = {"relevant": "javascript:alert(1)", "not_relevant": 'https://x.example/"><b>'}
    html = str(feedback_links_html(hostile))
    assert "javascript" not in html and "<b>" not in html
    assert "javascript" not in feedback_links_text(hostile)


def test_filters_in_an_autoescaped_template() -> None:
    env = jinja2.Environment(autoescape=True)
    install_filters(env)
    links = feedback_links("https://wt.example.org", 9, KEY, T0)
    html = env.from_string("{{ links | feedback_links_html }}").render(links=links)
    assert html.startswith('<p class="feedback">') and "&lt;a" not in html
    text_env = jinja2.Environment(autoescape=False)
    install_filters(text_env)
    assert "Not relevant: https://" in text_env.from_string("{{ l | feedback_links_text }}").render(
        l=links
    )

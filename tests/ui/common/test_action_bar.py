"""The panels' action row fits any width (overflow menu) and long names elide with a tooltip."""

from __future__ import annotations

from modelyard.ui.common.widgets import ActionBar, ElidedLabel
from PySide6.QtWidgets import QPushButton


def test_buttons_that_do_not_fit_move_to_the_more_menu_and_still_work(qtbot):
    bar = ActionBar()
    qtbot.addWidget(bar)
    clicked = []
    buttons = [bar.add(QPushButton(f"Action number {i}…")) for i in range(5)]
    for i, b in enumerate(buttons):
        b.clicked.connect(lambda _c=False, i=i: clicked.append(i))
    buttons[4].setEnabled(False)
    bar.resize(2000, 40)
    bar.show()
    qtbot.waitExposed(bar)
    assert bar.overflowed() == [] and not bar.more.isVisible()

    bar.resize(buttons[0].sizeHint().width() * 2 + bar.more.sizeHint().width() + 30, 40)
    qtbot.waitUntil(lambda: bool(bar.overflowed()))
    assert bar.more.isVisible()
    assert bar.overflowed() == buttons[2:], "the first buttons stay; the last move to the menu, in order"
    assert all(b.isVisible() for b in buttons[:2])
    bar._fill_menu()
    actions = bar.menu.actions()
    assert [a.text() for a in actions] == [b.text() for b in buttons[2:]]
    assert [a.isEnabled() for a in actions] == [True, True, False]
    actions[0].trigger()
    assert clicked == [2]


def test_a_higher_priority_button_stays_when_room_runs_out(qtbot):
    bar = ActionBar()
    qtbot.addWidget(bar)
    low = bar.add(QPushButton("Settings…"))
    high = bar.add(QPushButton("Serve"), priority=1)
    bar.show()
    bar.resize(high.sizeHint().width() + bar.more.sizeHint().width() + 20, 40)
    qtbot.waitUntil(lambda: bar.overflowed() == [low])
    assert high.isVisible()


def test_a_long_name_elides_in_the_middle_and_the_tooltip_carries_it(qtbot):
    label = ElidedLabel("penguins-species-predictions-from-march@v12")
    qtbot.addWidget(label)
    label.show()
    label.resize(120, 20)
    qtbot.waitUntil(label.is_elided)
    shown = label.text()
    assert "…" in shown and shown.startswith("pen") and shown.endswith("12")
    assert label.toolTip() == "penguins-species-predictions-from-march@v12"
    label.resize(800, 20)
    qtbot.waitUntil(lambda: not label.is_elided())
    assert label.text() == label.full_text() and label.toolTip() == ""

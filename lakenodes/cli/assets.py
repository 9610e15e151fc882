"""``lakenodes assets ...``: the asset registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog.assets import Asset
from ..core.lookup_parsing import parse_lookups
from ._groups import group
from ._render import table, text
from ._session import AssetFilterOption, Session, command

if TYPE_CHECKING:
    from rich.console import Console  # imported by the commands that render

app = group("The asset registry.")


@command(app, "list")
def assets_list(session: Session, filters: AssetFilterOption = None) -> None:
    """Registered assets, optionally filtered (--filter ticker__in=NVDA,AAPL)."""
    assets = sorted(Asset.filter(lake=session.lake, **parse_lookups(filters)), key=lambda a: a.unique_identifier)
    columns = list(Asset.model_fields)

    def render(console: Console) -> None:
        matching = " match " + ", ".join(filters) if filters else ""
        view = table(*columns, no_wrap=("unique_identifier",), empty=f"no assets in {session.lake.uri}{matching}")
        for asset in assets:
            view.add_row(*(text(getattr(asset, column)) for column in columns))
        console.print(view)

    session.output({"count": len(assets), "results": [a.model_dump(mode="json") for a in assets]}, render)

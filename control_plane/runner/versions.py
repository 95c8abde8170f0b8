"""Flow versions by id, cached forever: deployed versions are immutable (DESIGN §3)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from control_plane.engine import Definition, load_definition
from control_plane.store.models import Flow, FlowVersion


@dataclass(frozen=True)
class LoadedVersion:
    id: str
    flow_id: str
    company_id: str
    definition: Definition


class VersionCache:
    def __init__(self) -> None:
        self._versions: dict[str, LoadedVersion] = {}

    def get(self, version_id: str) -> LoadedVersion | None:
        return self._versions.get(version_id)

    def load(self, version_id: str) -> LoadedVersion | None:
        """Reads a version from the store (blocking); None if it does not exist.

        Only versions that are not the draft are cached: a draft can still change.
        """
        row = (
            FlowVersion.select(FlowVersion, Flow)
            .join(Flow)
            .where(FlowVersion.id == version_id)
            .get_or_none()
        )
        if row is None:
            return None
        loaded = LoadedVersion(
            id=row.id,
            flow_id=row.flow_id,
            company_id=row.flow.company_id,
            definition=load_definition(json.loads(row.definition)),
        )
        if row.number != row.flow.draft_number:
            self._versions[version_id] = loaded
        return loaded

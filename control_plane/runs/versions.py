"""Flow versions by id, cached: deployed versions are immutable (docs/design.md §2), so an entry
never goes stale. The cache is bounded (least recently used out) so that many flows cannot grow a
runner's memory without end."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

from control_plane.domain.validation import is_id
from control_plane.engine import Definition, load_definition
from control_plane.store.models import Flow, FlowVersion

#: Versions kept; a miss costs one indexed read and a parse.
MAX_VERSIONS = 1024


@dataclass(frozen=True)
class LoadedVersion:
    id: str
    flow_id: str
    company_id: str
    definition: Definition
    source: str  # the definition's JSON, for engine workers to parse once and cache


class VersionCache:
    def __init__(self, capacity: int = MAX_VERSIONS) -> None:
        self.capacity = capacity
        self._versions: OrderedDict[str, LoadedVersion] = OrderedDict()

    def __len__(self) -> int:
        return len(self._versions)

    def get(self, version_id: str) -> LoadedVersion | None:
        found = self._versions.get(version_id)
        if found is not None:
            self._versions.move_to_end(version_id)
        return found

    def load(self, version_id: str) -> LoadedVersion | None:
        """Reads a version from the store (blocking); None if it does not exist.

        Only versions that are not the draft are cached: a draft can still change. Called on a
        database thread; the cache itself is only changed here and read on the loop, and an
        OrderedDict's single operations are atomic under the GIL.
        """
        if not is_id(version_id):
            return None  # not an id at all (NUL, a megabyte): not worth a query
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
            source=row.definition,
        )
        if row.number != row.flow.draft_number:
            self.keep(loaded)
        return loaded

    def keep(self, loaded: LoadedVersion) -> None:
        self._versions[loaded.id] = loaded
        while len(self._versions) > self.capacity:
            self._versions.popitem(last=False)

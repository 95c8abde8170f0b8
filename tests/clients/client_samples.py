"""Values the SDK and CLI tests share."""

from __future__ import annotations

# A flow that answers through a callback shape; `status` is an integer the Struct round trip
# must give back as one.
CALLBACK_FLOW = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "shape", "type": "map", "expression": "{sku: payload.sku, stock: `7`}"},
        {"id": "reply", "type": "callback", "status": 201, "headers": {"x-stock": "yes"}},
    ]
}

# A well-formed id that names nothing.
MISSING_ID = "01jzzzzzzzzzzzzzzzzzzzzzzz"

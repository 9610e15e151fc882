"""The seeds-compatible facade: the classes user code and the seeds' code work with.

``lakenodes.DataNode`` is :class:`lakenodes.facade.node.DataNode` (the core node plus ``run()``)
and ``lakenodes.TimeIndexMetaTable`` is :class:`lakenodes.facade.meta_table.TimeIndexMetaTable`
(the catalog record plus search, SQL, deletes and labels). Lower layers work with the core
classes (:class:`lakenodes.nodes.node.DataNode`, :class:`lakenodes.catalog.records.TableRecord`).
"""

"""The HTTP paths of the service's search indexes (stable; other checks call them):

  POST /v1/indexes · GET /v1/indexes · GET/DELETE /v1/indexes/{name}
  POST /v1/indexes/{name}/documents · POST /v1/indexes/{name}/documents/delete
  GET/DELETE /v1/indexes/{name}/documents/{id} · POST /v1/indexes/{name}/search

Writes need the bearer token, like the task writes; reads and searches do not.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from anytask.apps.serve.index_store import IndexInfo
from anytask.apps.serve.schemas import Strict, Text

DocId = Annotated[str, Field(min_length=1, max_length=256, description="the document's id, unique in its index")]


class Document(Strict):
    id: DocId
    text: Text


class CreateIndex(Strict):
    name: str = Field(description="1-64 letters, digits, '_', '-', '.'", examples=["occupations"])
    documents: list[Document] = Field(min_length=1)
    index: str = Field(default="exact", description="registered index kind: exact (the reference) or hnsw")
    params: dict | None = Field(default=None, description="index parameters (e.g. hnsw's expansion_search)")


class AddDocuments(Strict):
    documents: list[Document] = Field(min_length=1)


class DeleteDocuments(Strict):
    ids: list[DocId] = Field(min_length=1)


class Search(Strict):
    queries: list[Text] = Field(min_length=1)
    k: int = Field(default=10, ge=1, description="documents per query, best first")


class Hit(BaseModel):
    id: str
    score: float
    text: str


class SearchResults(BaseModel):
    results: list[list[Hit]]


class IndexOut(BaseModel):
    name: str
    index: str
    params: dict
    backbone: str
    dim: int
    n_documents: int
    version: int
    created: float
    updated: float


class IndexList(BaseModel):
    indexes: list[IndexOut]


def _out(info: IndexInfo) -> IndexOut:
    return IndexOut(name=info.name, index=info.kind, params=info.params, backbone=info.backbone, dim=info.dim,
                    n_documents=info.n_documents, version=info.version, created=info.created, updated=info.updated)


def index_router(service, writer: list, errors: dict) -> APIRouter:
    """The index paths over ``service.indexes``; ``writer`` is the dependency list that checks the token."""
    indexes = service.indexes
    router = APIRouter(prefix="/v1/indexes", tags=["indexes"])

    @router.post("", status_code=201, response_model=IndexOut, dependencies=writer, responses=errors)
    async def create_index(body: CreateIndex) -> IndexOut:
        return _out(await indexes.create(body.name, [d.id for d in body.documents], [d.text for d in body.documents],
                                         body.index, body.params))

    @router.get("", response_model=IndexList)
    def list_indexes() -> IndexList:
        return IndexList(indexes=[_out(i) for i in indexes.store.list()])

    @router.get("/{name}", response_model=IndexOut, responses=errors)
    def describe_index(name: str) -> IndexOut:
        return _out(indexes.store.get(name))

    @router.delete("/{name}", status_code=204, dependencies=writer, responses=errors)
    async def delete_index(name: str) -> None:
        await indexes.delete(name)

    @router.post("/{name}/documents", response_model=IndexOut, dependencies=writer, responses=errors)
    async def add_documents(name: str, body: AddDocuments) -> IndexOut:
        return _out(await indexes.add(name, [d.id for d in body.documents], [d.text for d in body.documents]))

    @router.post("/{name}/documents/delete", response_model=IndexOut, dependencies=writer, responses=errors)
    async def delete_documents(name: str, body: DeleteDocuments) -> IndexOut:
        return _out(await indexes.delete_documents(name, body.ids))

    @router.get("/{name}/documents/{doc_id:path}", response_model=Document, responses=errors)
    def get_document(name: str, doc_id: str) -> Document:
        return Document(id=doc_id, text=indexes.store.document(name, doc_id))

    @router.delete("/{name}/documents/{doc_id:path}", response_model=IndexOut, dependencies=writer, responses=errors)
    async def delete_document(name: str, doc_id: str) -> IndexOut:
        return _out(await indexes.delete_documents(name, [doc_id]))

    @router.post("/{name}/search", response_model=SearchResults, responses=errors)
    async def search(name: str, body: Search) -> SearchResults:
        return SearchResults(results=await indexes.search(name, body.queries, body.k))

    return router

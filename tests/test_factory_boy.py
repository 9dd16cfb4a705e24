"""factory_boy's SQLAlchemy factories work unchanged inside TransactionalTestCase.

Factories keep ``sqlalchemy_session = db.session``, taken at import time, and
may commit: ``db.session`` stays the same scoped session object, and each
test's session turns commits into savepoints of the test's transaction, so
everything a factory created is rolled back after the test::

    import factory
    from factory.alchemy import SQLAlchemyModelFactory

    from myapp import db
    from myapp.models import Author, Book


    class AuthorFactory(SQLAlchemyModelFactory):
        class Meta:
            model = Author
            sqlalchemy_session = db.session          # the scoped session, at import time
            sqlalchemy_session_persistence = "commit"

        email = factory.Sequence(lambda n: f"author{n}@example.com")
        name = factory.Faker("name")


    class BookFactory(SQLAlchemyModelFactory):
        class Meta:
            model = Book
            sqlalchemy_session = db.session
            sqlalchemy_session_persistence = "commit"

        title = factory.Sequence(lambda n: f"Book {n}")
        author = factory.SubFactory(AuthorFactory)


    class BookTests(MyAppTestCase):                  # a TransactionalTestCase
        @classmethod
        def setUpTestData(cls):                      # once per class, shared by its tests
            cls.author = AuthorFactory()

        def test_books(self):
            BookFactory.create_batch(3, author=self.author)
            response = self.client.get(f"/authors/{self.author.id}")
            self.assertEqual(len(response.json["books"]), 3)   # rolled back afterwards

``sqlalchemy_get_or_create`` works too: the ``session.rollback()`` factory_boy
calls after an ``IntegrityError`` only undoes the failed insert, not the test's
earlier data.
"""

from __future__ import annotations

import typing as t
from unittest import mock

import factory
import sqlalchemy as sa
from factory.alchemy import SQLAlchemyModelFactory
from flask import Flask

from tests.apps import catalog
from tests.apps.catalog import Author, Book, Tag
from tests.matrix import on_all_backends


class AuthorFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Author
        sqlalchemy_session = catalog.db.session
        sqlalchemy_session_persistence = "commit"

    email = factory.Sequence(lambda n: f"author{n}@example.com")
    name = factory.Faker("name")


class BookFactory(SQLAlchemyModelFactory):
    class Meta:
        model = Book
        sqlalchemy_session = catalog.db.session
        sqlalchemy_session_persistence = "commit"

    title = factory.Sequence(lambda n: f"Book {n}")
    author = factory.SubFactory(AuthorFactory)


class TagFactory(SQLAlchemyModelFactory):
    """Get-or-create on (slug, label): a new label for an existing slug collides on insert."""

    class Meta:
        model = Tag
        sqlalchemy_session = catalog.db.session
        sqlalchemy_session_persistence = "commit"
        sqlalchemy_get_or_create = ("slug", "label")

    slug = factory.Sequence(lambda n: f"tag-{n}")
    label = factory.Sequence(lambda n: f"Tag {n}")


class CatalogCase:
    alembic_config = False

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return catalog.create_app(config)

    def assertCounts(self, **expected: int) -> None:
        """Counts seen by the app through a request, and by the test's session."""
        response = self.client.get("/counts")  # type: ignore[attr-defined]
        seen = {name: response.json[name] for name in expected}
        self.assertEqual(seen, expected)  # type: ignore[attr-defined]
        models = {"authors": Author, "books": Book, "tags": Tag}
        for name, n in expected.items():
            self.assertEqual(catalog.count(models[name]), n)  # type: ignore[attr-defined]


@on_all_backends
class FactoryBoyTests(CatalogCase):
    @staticmethod
    def spy_rollback() -> t.ContextManager[mock.MagicMock]:
        """Watch the ``session.rollback()`` factory_boy calls on an IntegrityError."""
        scoped = catalog.db.session
        return mock.patch.object(scoped, "rollback", wraps=scoped.rollback)

    def test_committing_factories_are_rolled_back_a(self) -> None:
        self.assertCounts(authors=0, books=0, tags=0)
        author = AuthorFactory()
        books = BookFactory.create_batch(3, author=author)
        BookFactory()  # with an author of its own, through the SubFactory
        self.assertIsNotNone(author.id)
        self.assertCounts(authors=2, books=4)
        response = self.client.get(f"/authors/{author.id}")
        self.assertEqual(response.json["books"], sorted(b.title for b in books))

    def test_committing_factories_are_rolled_back_b(self) -> None:
        self.test_committing_factories_are_rolled_back_a()

    def test_factory_commits_survive_a_later_rollback_in_the_test(self) -> None:
        author = AuthorFactory()
        self.session.add(Author(email="pending@example.com", name="pending"))
        self.session.rollback()  # as app code does after an error
        self.assertCounts(authors=1)
        self.assertEqual(self.session.get(Author, author.id).email, author.email)

    def test_get_or_create_finds_the_existing_row(self) -> None:
        first = TagFactory(slug="python", label="Python")
        again = TagFactory(slug="python", label="Python")
        self.assertEqual(again.id, first.id)
        self.assertCounts(tags=1)

    def test_get_or_create_after_integrity_error(self) -> None:
        """factory_boy rolls back the failed insert and looks the slug up instead."""
        self.assertCounts(authors=0, tags=0)
        author = AuthorFactory()
        first = TagFactory(slug="python")  # label from the sequence
        with self.spy_rollback() as rollback:
            again = TagFactory(slug="python")  # (python, next label): not found, insert collides
        rollback.assert_called_once_with()
        self.assertEqual(again.id, first.id)
        self.assertCounts(authors=1, tags=1)
        self.assertEqual(self.session.get(Author, author.id).email, author.email)
        TagFactory()  # the session (and, on PostgreSQL, the transaction) is still usable
        self.assertCounts(authors=1, tags=2)

    def test_get_or_create_reraises_when_nothing_matches(self) -> None:
        self.assertCounts(tags=0)
        existing = TagFactory(slug="python", label="Python")
        with self.spy_rollback() as rollback, self.assertRaises(sa.exc.IntegrityError):
            TagFactory(slug="snake", label="Python")  # label collides, (snake, Python) absent
        rollback.assert_called_once_with()
        self.assertCounts(tags=1)
        self.assertEqual(self.session.get(Tag, existing.id).slug, "python")
        TagFactory(slug="snake", label="Snake")
        self.assertCounts(tags=2)


@on_all_backends
class FactoryBoyClassDataTests(CatalogCase):
    """Factories in setUpTestData: created once, seen by every test, changes rolled back."""

    author: t.ClassVar[Author]
    books: t.ClassVar[list[Book]]

    @classmethod
    def setUpTestData(cls) -> None:
        cls.author = AuthorFactory(name="Class Author")
        cls.books = BookFactory.create_batch(2, author=cls.author)

    def test_change_class_data_a(self) -> None:
        self.assertCounts(authors=1, books=2)
        self.assertEqual(self.session.get(Author, self.author.id).name, "Class Author")
        self.author.name = "Renamed"
        BookFactory(author=self.author)
        self.session.commit()
        self.assertCounts(authors=1, books=3)
        response = self.client.get(f"/authors/{self.author.id}")
        self.assertEqual(len(response.json["books"]), 3)

    def test_change_class_data_b(self) -> None:
        self.test_change_class_data_a()

"""Example test suite: every test runs in a transaction that is rolled back.

Run from the repository root with::

    python -m unittest discover -s examples/blog -t examples/blog
"""

from __future__ import annotations

from typing import Any

import blog
from blog.models import Post, Tag, User
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from transactional_testcase import TransactionalTestCase


class BlogTestCase(TransactionalTestCase):
    """Base class for the blog's tests: only says how to build the app."""

    @classmethod
    def create_app(cls, config: dict[str, Any]) -> Flask:
        # ``config`` holds TESTING=True and the test database URL(s).  The
        # schema is created by running the app's Flask-Migrate migrations.
        return blog.create_app(config)

    def create_user(self, username: str, email: str | None = None) -> TestResponse:
        """POST a new user through the API and return the response."""
        return self.client.post(
            "/users",
            json={"username": username, "email": email or f"{username}@example.com"},
        )


class UserApiTests(BlogTestCase):
    def test_created_user_is_visible_through_the_orm(self) -> None:
        response = self.create_user("alice")

        self.assertEqual(response.status_code, 201)
        # The view committed, but only inside this test's transaction; the
        # test's own session sees the row straight away.
        alice = User.query.filter_by(username="alice").one()
        self.assertEqual(alice.email, "alice@example.com")
        self.assertEqual(response.get_json()["id"], alice.id)

    def test_get_user(self) -> None:
        bob = User(username="bob", email="bob@example.com")
        self.session.add(bob)
        self.session.flush()  # not even committed: the request still sees it

        response = self.client.get(f"/users/{bob.id}")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.get_json()["username"], "bob")

    def test_unknown_user_is_404(self) -> None:
        response = self.client.get("/users/999999")

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.get_json(), {"error": "no such user"})

    def test_missing_field_is_400(self) -> None:
        response = self.client.post("/users", json={"username": "nomail"})

        self.assertEqual(response.status_code, 400)
        self.assertEqual(User.query.count(), 0)

    def test_duplicate_username_is_409_and_session_stays_usable(self) -> None:
        self.assertEqual(self.create_user("alice").status_code, 201)

        response = self.create_user("alice", email="other@example.com")

        self.assertEqual(response.status_code, 409)
        self.assertIn("error", response.get_json())
        # The view rolled back after the IntegrityError.  That undid only its
        # own work: the first user is still there and the session still works.
        self.assertEqual(User.query.count(), 1)
        self.session.add(User(username="carol", email="carol@example.com"))
        self.session.commit()
        self.assertEqual(sorted(self.session.scalars(select(User.username))), ["alice", "carol"])

    def test_duplicate_email_is_409(self) -> None:
        self.create_user("alice", email="shared@example.com")

        response = self.create_user("alicia", email="shared@example.com")

        self.assertEqual(response.status_code, 409)
        self.assertIsNone(User.query.filter_by(username="alicia").first())


class RollbackBetweenTestsTests(BlogTestCase):
    """Both tests create the same user: each only passes if the other's
    committed user was rolled back, whichever order they run in."""

    def assert_only_dave_exists(self) -> None:
        self.assertEqual(self.session.scalars(select(User.username)).all(), ["dave"])

    def test_create_dave_once(self) -> None:
        self.assertEqual(self.create_user("dave").status_code, 201)
        self.assert_only_dave_exists()

    def test_create_dave_again(self) -> None:
        self.assertEqual(self.create_user("dave").status_code, 201)
        self.assert_only_dave_exists()


class PostTests(BlogTestCase):
    author: User
    intro: Tag
    hello: Post
    draft: Post

    @classmethod
    def setUpTestData(cls) -> None:
        # Runs once for the whole class; every test starts from this data and
        # gets these attributes attached to its own session.
        cls.author = User(username="ada", email="ada@example.com")
        cls.intro = Tag(name="intro")
        cls.hello = Post(
            author=cls.author,
            title="Hello, world",
            body="First!",
            published=True,
            tags=[cls.intro],
        )
        cls.draft = Post(author=cls.author, title="Work in progress", body="...")
        blog.db.session.add_all([cls.hello, cls.draft])
        blog.db.session.commit()

    def test_list_only_published_posts(self) -> None:
        response = self.client.get("/posts")

        self.assertEqual(response.status_code, 200)
        [post] = response.get_json()
        self.assertEqual(post["title"], "Hello, world")
        self.assertEqual(post["author"], "ada")
        self.assertEqual(post["tags"], ["intro"])

    def test_list_is_newest_first(self) -> None:
        self.session.add(Post(author=self.author, title="Second", body="Again", published=True))
        self.session.commit()

        titles = [post["title"] for post in self.client.get("/posts").get_json()]

        self.assertEqual(titles, ["Second", "Hello, world"])

    def test_list_posts_query_count(self) -> None:
        # One SELECT for the posts (with their authors joined in) and one
        # SELECT ... IN for the tags of all those posts: no N+1.
        with self.assertNumQueries(2):
            response = self.client.get("/posts")

        self.assertEqual(len(response.get_json()), 1)

    def test_create_post_reuses_existing_tags(self) -> None:
        response = self.client.post(
            f"/users/{self.author.id}/posts",
            json={
                "title": "Tagged",
                "body": "Body",
                "tags": ["Intro", "flask", " flask "],
            },
        )

        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.get_json()["tags"], ["flask", "intro"])
        # "intro" came from setUpTestData and was reused; only "flask" is new.
        self.assertEqual(sorted(self.session.scalars(select(Tag.name))), ["flask", "intro"])
        post = self.session.get(Post, response.get_json()["id"])
        assert post is not None
        self.assertIn(self.intro, post.tags)

    def test_create_post_for_unknown_user_is_404(self) -> None:
        response = self.client.post("/users/999999/posts", json={"title": "Nobody", "body": "..."})

        self.assertEqual(response.status_code, 404)
        self.assertEqual(self.session.scalar(select(func.count(Post.id))), 2)

    def test_publish(self) -> None:
        response = self.client.post(f"/posts/{self.draft.id}/publish")

        self.assertEqual(response.status_code, 200)
        self.assertIs(response.get_json()["published"], True)
        published = self.session.scalar(select(Post.published).where(Post.id == self.draft.id))
        self.assertIs(published, True)

    def test_draft_is_still_a_draft(self) -> None:
        # The test_publish* tests publish this draft and commit; in whatever
        # order the tests run, each one starts from setUpTestData's state.
        self.assertFalse(self.draft.published)
        self.assertEqual(
            [post["title"] for post in self.client.get("/posts").get_json()],
            ["Hello, world"],
        )

    def test_index_lists_published_titles(self) -> None:
        response = self.client.get("/")

        html = response.get_data(as_text=True)
        self.assertEqual(response.status_code, 200)
        self.assertIn('<li class="post">Hello, world</li>', html)
        self.assertNotIn('<li class="post">Work in progress', html)

    def test_publish_form_flashes_and_redirects_to_index(self) -> None:
        response = self.client.post(
            f"/posts/{self.draft.id}/publish",
            content_type="application/x-www-form-urlencoded",  # as a browser sends
            follow_redirects=True,
        )

        html = response.get_data(as_text=True)
        self.assertEqual(response.request.path, "/")
        self.assertIn("Published: Work in progress", html)
        self.assertIn('<li class="post">Work in progress</li>', html)

    def view(self, post: Post) -> int:
        """Count one view of ``post`` and return the new total."""
        response = self.client.post(f"/posts/{post.id}/view")
        self.assertEqual(response.status_code, 200)
        views: int = response.get_json()["views"]
        return views

    def test_view_counter_uses_the_test_transaction(self) -> None:
        # The view bypasses the session with db.engine.begin() and raw SQL;
        # that connection is the test's too, so it sees and is rolled back.
        self.assertEqual(self.view(self.hello), 1)
        self.assertEqual(self.view(self.hello), 2)

        self.session.refresh(self.hello)
        self.assertEqual(self.hello.views, 2)

    def test_view_counter_starts_from_zero_in_every_test(self) -> None:
        self.assertEqual(self.hello.views, 0)
        self.assertEqual(self.view(self.hello), 1)

    def test_view_unknown_post_is_404(self) -> None:
        self.assertEqual(self.client.post("/posts/999999/view").status_code, 404)

import re
import uuid

import attrs
import pytest

from rag_core.answers import Answer, AnswerMode, Passage
from rag_core.documents import Chunk
from rag_core.extractive import CODE_ONLY, NOTHING_FOUND, compose_extractive

PUBLISHERS = """## Publishers

A **publisher** sends messages on a [topic](/docs/topics) to every subscriber.
In ROS 2 you create a publisher with `create_publisher` on a node.

```python
publisher = node.create_publisher(String, "chatter", 10)  # publisher topic queue
```

| Setting | Meaning of the publisher setting |
|---------|----------------------------------|
| depth   | queue size of the publisher      |

    ros2 topic pub /chatter std_msgs/String "data: publisher"

- The queue depth bounds how many messages a publisher keeps.
"""

SUBSCRIBERS = """# Subscribers

Subscribers receive messages from a topic through a callback.
The callback runs on the executor each time a message arrives.
"""

QOS = """Quality of Service settings must be compatible between publisher and subscriber.
Reliable delivery retransmits lost samples on the network.
"""


def _passage(text: str, rank: int, document: str = "") -> Passage:
    chunk = Chunk(
        id=str(uuid.UUID(int=rank)),
        document_id=document or f"docs/page{rank}.md",
        ordinal=0,
        text=text,
        heading_path=(f"Heading {rank}",),
        content_hash=f"hash{rank}",
        route=f"/docs/page{rank}",
        title=f"Page {rank}",
    )
    return Passage(chunk=chunk, score=1.0 / rank, rank=rank)


def _numbers(answer: Answer) -> list[int]:
    return [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]


def _assert_citations_consistent(answer: Answer) -> None:
    used = _numbers(answer)
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert set(used) == {c.number for c in answer.citations}
    first_appearance = list(dict.fromkeys(used))
    assert first_appearance == sorted(first_appearance)


def test_answer_quotes_relevant_sentences_with_resolving_citations() -> None:
    passages = [_passage(PUBLISHERS, 1), _passage(SUBSCRIBERS, 2), _passage(QOS, 3)]
    answer = compose_extractive("How do I create a publisher?", passages)
    _assert_citations_consistent(answer)
    assert answer.mode is AnswerMode.EXTRACTIVE
    assert answer.text.startswith(
        "In ROS 2 you create a publisher with create_publisher on a node. [1]"
    )
    first = answer.citations[0]
    assert (first.title, first.route, first.heading_path) == (
        "Page 1",
        "/docs/page1",
        ("Heading 1",),
    )
    assert (first.chunk_id, first.document_id) == (str(uuid.UUID(int=1)), "docs/page1.md")
    assert first.score == 1.0
    assert first.snippet.startswith("A publisher sends messages on a topic to every subscriber.")


def test_every_sentence_ends_with_a_citation() -> None:
    passages = [_passage(PUBLISHERS, 1), _passage(QOS, 2)]
    answer = compose_extractive("publisher subscriber reliable delivery", passages)
    pieces = re.split(r"(?<=\])\s", answer.text)
    assert len(pieces) > 1
    assert all(re.search(r"[.!?] \[\d+\]$", piece) for piece in pieces)


def test_sentences_follow_passage_rank_and_numbers_follow_first_appearance() -> None:
    best = _passage("The gripper closes its fingers around the object gently.", 1)
    second = _passage("A gripper with soft fingers picks fragile fruit without bruising it.", 2)
    # Given out of rank order: the answer still reads rank 1 first.
    answer = compose_extractive("soft gripper fingers fruit", [second, best])
    _assert_citations_consistent(answer)
    assert answer.text.index("closes its fingers") < answer.text.index("soft fingers")
    assert [c.chunk_id for c in answer.citations] == [best.chunk.id, second.chunk.id]
    assert _numbers(answer) == [1, 2]


def test_only_cited_passages_are_listed() -> None:
    unrelated = _passage("Bipedal walking needs a model of the zero moment point.", 2)
    answer = compose_extractive(
        "subscriber callback executor", [_passage(SUBSCRIBERS, 1), unrelated]
    )
    _assert_citations_consistent(answer)
    assert [c.document_id for c in answer.citations] == ["docs/page1.md"]


def test_code_tables_and_headings_are_never_quoted() -> None:
    answer = compose_extractive(
        "publisher topic queue depth setting", [_passage(PUBLISHERS, 1)], max_sentences=10
    )
    for fragment in ["create_publisher(", "chatter", "|", "##", "Publishers\n", "ros2 topic pub"]:
        assert fragment not in answer.text
    assert "The queue depth bounds how many messages a publisher keeps. [1]" in answer.text


def test_markdown_syntax_is_stripped() -> None:
    answer = compose_extractive("publisher topic", [_passage(PUBLISHERS, 1)])
    assert "**" not in answer.text
    assert "](" not in answer.text
    assert "`" not in answer.text
    assert "- The queue" not in answer.text


def test_front_matter_mdx_imports_and_comments_are_not_prose() -> None:
    text = (
        "---\nid: ros-nodes\ndescription: nodes and the node graph explained\n---\n"
        "import Tabs from '@theme/Tabs';\n\n"
        "{/* an editor's note about the node */} A node is a process that performs computation.\n"
        "<Tabs>\n"
    )
    answer = compose_extractive("what is a node", [_passage(text, 1)])
    assert answer.text == "A node is a process that performs computation. [1]"
    assert answer.citations[0].snippet == "A node is a process that performs computation."


def test_bracketed_numbers_in_sources_never_pose_as_citations() -> None:
    text = (
        "Topics decouple publishers from subscribers [7]. "
        "Read the first byte of a publisher message with msg.data[0] in the callback."
    )
    answer = compose_extractive("publisher subscriber message", [_passage(text, 1)])
    _assert_citations_consistent(answer)
    assert answer.text == "Topics decouple publishers from subscribers. [1]"


def test_rare_question_terms_outweigh_common_ones() -> None:
    text = (
        "Robots move their joints with electric motors. "
        "Robots carry batteries that power their motors. "
        "A lidar measures the distance to nearby walls. "
        "Robots balance with motors in both ankles. "
        "Small robots use geared motors for speed."
    )
    answer = compose_extractive("robots motors lidar", [_passage(text, 1)], max_sentences=1)
    # One rare term beats two terms that nearly every sentence has.
    assert answer.text == "A lidar measures the distance to nearby walls. [1]"


def test_limits_are_respected() -> None:
    sentences = " ".join(f"The humanoid robot number {i} walks on two legs." for i in range(20))
    answer = compose_extractive("humanoid robot walks", [_passage(sentences, 1)], max_sentences=3)
    assert len(_numbers(answer)) == 3
    short = compose_extractive("humanoid robot walks", [_passage(sentences, 1)], max_chars=120)
    assert len(short.text) <= 120
    assert len(_numbers(short)) == 2


def test_an_overlong_sentence_is_truncated_to_fit() -> None:
    text = "The humanoid robot " + " ".join(["walks"] * 400) + "."
    answer = compose_extractive("humanoid robot", [_passage(text, 1)], max_chars=200)
    assert len(answer.text) <= 200
    assert answer.text.endswith("… [1]")


def test_repeated_sentences_from_overlapping_chunks_are_quoted_once() -> None:
    sentence = "The executor runs every subscriber callback in turn."
    passages = [_passage(sentence, 1), _passage(f"{sentence} Timers fire periodically.", 2)]
    answer = compose_extractive("executor callback", passages)
    assert answer.text.count(sentence) == 1
    _assert_citations_consistent(answer)


def test_selection_is_the_primary_source() -> None:
    selection = "QoS profiles let a publisher and a subscriber agree on reliable delivery."
    passages = [_passage(SUBSCRIBERS, 1), _passage(QOS, 2)]
    answer = compose_extractive("what is reliable delivery?", passages, selected_text=selection)
    _assert_citations_consistent(answer)
    assert answer.mode is AnswerMode.EXTRACTIVE
    assert answer.text.startswith(f"{selection} [1]")
    selected = answer.citations[0]
    assert (selected.title, selected.route, selected.chunk_id, selected.document_id) == (
        "Selected text",
        "",
        None,
        None,
    )
    assert selected.snippet == selection
    # Retrieved passages follow, numbered from 2 in rank order.
    assert [c.chunk_id for c in answer.citations[1:]] == [p.chunk.id for p in passages]
    assert "Reliable delivery retransmits lost samples on the network. [3]" in answer.text


def test_selection_leads_even_when_it_shares_no_terms_with_the_question() -> None:
    selection = "Zero moment point control keeps a biped upright."
    answer = compose_extractive(
        "explain this please", [_passage(SUBSCRIBERS, 1)], selected_text=selection
    )
    assert answer.text == f"{selection} [1]"


def test_selection_leads_when_only_passages_match_the_question() -> None:
    selection = "Zero moment point control keeps a biped upright."
    answer = compose_extractive(
        "subscriber callback", [_passage(SUBSCRIBERS, 1)], selected_text=selection
    )
    _assert_citations_consistent(answer)
    assert answer.text.startswith(f"{selection} [1] Subscribers receive")


def test_a_long_selection_leaves_room_for_a_passage() -> None:
    selection = " ".join(f"Balance control method {i} keeps the biped upright." for i in range(6))
    passage = _passage("Ankle strategies help balance control on uneven ground.", 1)
    answer = compose_extractive("balance control", [passage], selected_text=selection)
    _assert_citations_consistent(answer)
    assert _numbers(answer) == [1, 1, 1, 2]


def test_selection_alone_gives_selection_mode() -> None:
    answer = compose_extractive("what does this mean?", [], selected_text="Quality of Service")
    assert answer.mode is AnswerMode.SELECTION
    assert answer.text == "Quality of Service. [1]"
    assert [c.title for c in answer.citations] == ["Selected text"]


@pytest.mark.parametrize("selection", ["", "   \n"])
def test_nothing_to_quote_gives_an_honest_answer(selection: str) -> None:
    answer = compose_extractive("what is a publisher?", [], selected_text=selection)
    assert answer == Answer(text=NOTHING_FOUND, mode=AnswerMode.EXTRACTIVE, uncertain=True)


def test_passages_of_only_code_point_at_the_code_and_cite_it() -> None:
    code = "```python\nprint('publisher')\n```"
    answer = compose_extractive("publisher", [_passage(code, 1)])
    assert answer.text == f"{CODE_ONLY} [1]"
    assert [c.number for c in answer.citations] == [1]


def test_questions_and_objectives_are_never_quoted() -> None:
    review = _passage("What does a publisher send to a topic?", 1)
    objectives = attrs.evolve(
        review,
        chunk=attrs.evolve(
            review.chunk,
            text="- Create a publisher that sends messages to a topic.",
            heading_path=("Learning Objectives",),
        ),
    )
    prose = _passage("A publisher sends messages to a topic for subscribers to read.", 3)
    answer = compose_extractive("What does a publisher send?", [review, objectives, prose])
    assert answer.text == "A publisher sends messages to a topic for subscribers to read. [1]"


def test_the_sentence_that_defines_the_term_leads() -> None:
    mention = _passage("Each node can publish to a topic and a node can subscribe to it.", 1)
    definition = _passage("A node is an executable that uses ROS 2 to talk to others.", 2)
    answer = compose_extractive("What is a node?", [mention, definition], max_sentences=1)
    assert answer.text.startswith("A node is an executable")


def test_without_overlap_the_top_passage_opening_is_quoted() -> None:
    passages = [_passage(QOS, 2), _passage(SUBSCRIBERS, 1)]
    answer = compose_extractive("tell me about the weather", passages)
    assert answer.text == (
        "Subscribers receive messages from a topic through a callback. [1] "
        "The callback runs on the executor each time a message arrives. [1]"
    )
    assert [c.chunk_id for c in answer.citations] == [passages[1].chunk.id]


def test_answers_are_deterministic() -> None:
    passages = [_passage(PUBLISHERS, 1), _passage(SUBSCRIBERS, 2), _passage(QOS, 3)]
    question = "publisher subscriber messages"
    first = compose_extractive(question, passages, selected_text=QOS)
    again = compose_extractive(question, list(reversed(passages)), selected_text=QOS)
    assert first == again


@pytest.mark.parametrize(("sentences", "chars"), [(0, 900), (4, 10)])
def test_invalid_limits_are_rejected(sentences: int, chars: int) -> None:
    with pytest.raises(ValueError):
        compose_extractive("q", [], max_sentences=sentences, max_chars=chars)


def test_two_chunks_of_one_page_share_one_citation() -> None:
    first = _passage("Gazebo simulates accurate physics and sensors for robots.", 1)
    second = _passage("Gazebo renders camera sensors and physics for the simulated robot.", 2)
    second = attrs.evolve(second, chunk=attrs.evolve(second.chunk, route=first.chunk.route))
    answer = compose_extractive("Gazebo physics and sensors", [first, second])
    assert [c.number for c in answer.citations] == [1]
    assert "[2]" not in answer.text
    assert answer.text.count("[1]") == 2


def test_a_sentence_under_a_heading_that_names_the_subject_wins_the_tie() -> None:
    gazebo = _passage("Accurate physics simulation using ODE, Bullet, Simbody or DART.", 2)
    gazebo = attrs.evolve(
        gazebo, chunk=attrs.evolve(gazebo.chunk, heading_path=("Key Features of Gazebo",))
    )
    other = _passage("GPU-accelerated physics simulation using PhysX for robots.", 1)
    answer = compose_extractive(
        "Which physics engines does Gazebo use?", [other, gazebo], max_sentences=1
    )
    assert answer.text.startswith("Accurate physics simulation using ODE")


def test_a_statement_that_introduces_code_is_quoted_but_a_dangling_lead_in_is_not() -> None:
    srv = _passage(
        "Services are defined using `.srv` files that specify the request and response types:\n\n"
        "```\nint64 a\n```\n\nBy the end of this lesson you will be able to:",
        1,
    )
    answer = compose_extractive("srv file", [srv])
    assert answer.text == (
        "Services are defined using .srv files that specify the request and response types. [1]"
    )


def test_the_opening_sentence_of_a_section_named_by_the_question_answers_it() -> None:
    code = _passage("```python\nimu = ImuSensor()\n```", 1)
    imu = _passage("Inertial Measurement Units provide crucial information for balance.", 2)
    imu = attrs.evolve(imu, chunk=attrs.evolve(imu.chunk, heading_path=("IMU Systems",)))
    answer = compose_extractive("IMU?", [code, imu])
    assert answer.text == "Inertial Measurement Units provide crucial information for balance. [1]"


def test_a_lead_in_and_its_list_are_quoted_as_one() -> None:
    humanoids = _passage(
        "Humanoid robots offer several advantages:\n\n"
        "- **Upper body dexterity**: Human-like manipulation.\n"
        "- **Social interaction**: Natural human-robot interaction.\n\n"
        "They are hard to build.",
        1,
    )
    answer = compose_extractive("What are the advantages of humanoid robots?", [humanoids])
    assert answer.text.startswith(
        "Humanoid robots offer several advantages: Upper body dexterity: Human-like "
        "manipulation; Social interaction: Natural human-robot interaction. [1]"
    )


def test_weakly_related_sentences_do_not_pad_the_answer() -> None:
    definition = _passage("A topic is a named bus over which nodes exchange messages.", 1)
    aside = _passage("Each topic name should be short and written in lower case.", 2)
    answer = compose_extractive("What is a topic?", [definition, aside])
    assert answer.text == "A topic is a named bus over which nodes exchange messages. [1]"


def test_a_sentence_about_the_chapter_yields_to_one_about_the_subject() -> None:
    intro = _passage("This chapter introduces ROS 2 topics and the nodes that use topics.", 1)
    prose = _passage("Nodes exchange data over ROS 2 topics without waiting.", 2)
    answer = compose_extractive("What is a ROS 2 topic?", [intro, prose], max_sentences=1)
    assert answer.text.startswith("Nodes exchange data over ROS 2 topics")


def test_a_list_scores_by_its_lead_in_and_best_item_not_by_all_its_words() -> None:
    modules = _passage(
        "The course has three modules:\n\n- Simulation with Gazebo\n- Perception with Isaac\n"
        "- Language with VLA models",
        1,
    )
    gazebo = _passage("Gazebo gives accurate physics simulation for robots.", 2)
    gazebo = attrs.evolve(gazebo, score=modules.score)  # retrieval found both as relevant
    answer = compose_extractive(
        "physics simulation perception language", [modules, gazebo], max_sentences=1
    )
    assert answer.text.startswith("Gazebo gives accurate physics simulation")


def test_a_table_row_is_quoted_as_a_sentence_naming_its_columns() -> None:
    patterns = _passage(
        "Pick the pattern by how the data flows.\n\n"
        "| Pattern | Use Case | Characteristics |\n"
        "|---------|----------|-----------------|\n"
        "| Topics | Continuous data streams | Asynchronous, **broadcast**, no acknowledgment |\n"
        "| Services | Simple request-response | Synchronous, blocking, request-reply |\n",
        1,
    )
    answer = compose_extractive("Do topics acknowledge messages?", [patterns], max_sentences=1)
    assert answer.text == (
        "Topics — Use Case: Continuous data streams; Characteristics: Asynchronous, "
        "broadcast, no acknowledgment. [1]"
    )


def test_a_table_without_a_header_row_is_not_quoted() -> None:
    grid = _passage("| Topics | asynchronous acknowledgment |\n| Services | blocking |", 1)
    assert compose_extractive("topics acknowledgment", [grid]).text.startswith(CODE_ONLY)


def test_a_list_that_opens_its_section_is_quoted_under_its_heading() -> None:
    sensors = _passage(
        "- **LiDAR**: Light Detection and Ranging for 3D mapping\n"
        "- **Cameras**: Visual perception for object recognition\n"
        "- **IMUs**: Inertial Measurement Units for balance",
        1,
    )
    sensors = attrs.evolve(
        sensors, chunk=attrs.evolve(sensors.chunk, heading_path=("Bridge", "Sensor Systems"))
    )
    answer = compose_extractive("What sensors does a robot rely on?", [sensors])
    assert answer.text == (
        "Sensor Systems: LiDAR: Light Detection and Ranging for 3D mapping; Cameras: Visual "
        "perception for object recognition; IMUs: Inertial Measurement Units for balance. [1]"
    )


def test_a_long_list_opening_its_section_is_quoted_item_by_item() -> None:
    glossary = "\n".join(f"- **Term{n}**: meaning number {n} of the glossary" for n in range(12))
    glossary += "\n- **Odometry**: Estimating position from wheel motion"
    passage = _passage(glossary, 1)
    answer = compose_extractive("What is odometry?", [passage], max_sentences=1)
    assert answer.text == "Odometry: Estimating position from wheel motion. [1]"


def test_a_sentence_from_a_better_retrieved_passage_counts_more() -> None:
    strong = _passage("Reliable delivery retransmits lost samples.", 1)
    weak = _passage("Best effort delivery drops lost samples.", 2)
    weak = attrs.evolve(weak, score=0.1, rank=1)  # ranked first, but a far weaker match
    strong = attrs.evolve(strong, rank=2)
    answer = compose_extractive("lost samples delivery", [weak, strong], max_sentences=1)
    assert answer.text == "Reliable delivery retransmits lost samples. [1]"


def test_an_answer_quoting_what_matches_is_not_uncertain() -> None:
    answer = compose_extractive("What is a topic?", [_passage(SUBSCRIBERS, 1), _passage(QOS, 2)])
    assert answer.text.startswith("Subscribers receive messages from a topic")
    assert not answer.uncertain


def test_answers_without_a_fitting_sentence_are_uncertain() -> None:
    unrelated = _passage("Bipedal walking needs a model of the zero moment point.", 1)
    assert compose_extractive("How do I boil pasta?", [unrelated]).uncertain
    code = _passage("```python\nnode = Node('talker')\n```", 1)
    assert compose_extractive("talker node", [code]).uncertain
    assert compose_extractive("anything", []).uncertain


def test_an_answer_from_the_readers_selection_is_not_uncertain() -> None:
    answer = compose_extractive("explain this", [], selected_text="Topics carry messages.")
    assert answer.mode is AnswerMode.SELECTION and not answer.uncertain
